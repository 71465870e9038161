"""The errors a user can act on: each is printed as one `error:` line and exits with its code."""


class StudyError(Exception):
    """Something the user can fix (a bad sweep file, flag or dataset, a study that is not there);
    the message says what and how. Raised before anything is trained or written: exit code 2."""

    exit_code = 2


class StoppedEarly(StudyError):
    """Work that began and stopped (a store or a server gone); what finished is kept: exit code 1."""

    exit_code = 1
