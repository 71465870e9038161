"""Command-line values other than sweep files: output folders, study names and `--compare` lists.

Each is checked before any store is read and before anything is trained or written, and refused
with one line that names the flag (`ConfigError`, or the error class a caller passes), so that a
report that would fail on its last step (a 300-byte folder name, a file where its `tables` folder
goes, a dimension named twice) fails on its first instead. Nothing here touches the stores.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from study.spec.base import ConfigError, shown
from study.spec.settings import path_too_long

MAX_COMPARED = 2  # a report's two-way table has rows and columns: a third dimension has no place in it
REPORT_FILES = ("report.md", "report.html", "report.typ", "report.pdf")  # what a report writes into --out
REPORT_FOLDERS = ("tables", "figures")


def compared_dimensions(compare: str | list[str] | None, most: int | None = None) -> list[str] | None:
    """`--compare cell,units` as a list (None when not given); ConfigError for an empty name, a name
    given twice, or more than `most` names."""
    if compare is None:
        return None
    if isinstance(compare, str) and not compare.strip():
        raise ConfigError("--compare '': name at least one dimension, e.g. --compare cell (or leave the flag out)")
    names = [str(name).strip() for name in (compare.split(",") if isinstance(compare, str) else compare)]
    given = ",".join(names)
    if not all(names):
        raise ConfigError(f"--compare {shown(given)}: an empty name (a comma too many); "
                          "write e.g. --compare cell,units")
    twice = next((name for index, name in enumerate(names) if name in names[:index]), None)
    if twice is not None:
        raise ConfigError(f"--compare {shown(given)}: {shown(twice)} is named twice; name each dimension once")
    if most is not None and len(names) > most:
        raise ConfigError(f"--compare {shown(given)}: a report compares at most {most} dimensions (the rows and "
                          f"columns of its two-way table), not {len(names)}; choose {most}, e.g. --compare "
                          f"{','.join(names[:most])}")
    return names


def check_output_folder(out: str | Path, flag: str = "--out", files: tuple[str, ...] = (),
                        folders: tuple[str, ...] = ()) -> None:
    """ConfigError when `out` cannot become the folder a command writes `files` and `folders` into:
    a name too long, a file (or a file above it) where the folder goes, a folder where one of its
    files goes, or a file where one of its folders goes."""
    out = Path(out)
    problem = path_too_long(str(out))
    if problem:
        raise ConfigError(f"{flag} {shown(str(out))}: {problem}")
    kind = _kind(out)
    if kind is not None and kind != "folder":
        raise ConfigError(f"{flag} {out}: is a file, not a folder; give a folder for the output")
    if kind is None:
        above = next((parent for parent in out.parents if _kind(parent) is not None), Path("."))
        if _kind(above) != "folder":
            raise ConfigError(f"{flag} {out}: {above} is a file, so no folder can be made in it; give another folder")
        if not os.access(above, os.W_OK | os.X_OK):
            raise ConfigError(f"{flag} {out}: the folder {above} is not writable; make it writable or give "
                              "another folder")
        return
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {out}: the folder is not writable; make it writable or give another folder")
    for name in folders:
        if _kind(out / name) not in (None, "folder"):
            raise ConfigError(f"{flag} {out}: {out / name} is a file where the output's {name} folder goes; move it "
                              "aside or give another folder")
    for name in files:
        if _kind(out / name) == "folder":
            raise ConfigError(f"{flag} {out}: {out / name} is a folder where the output's {name} goes; move it aside "
                              "or give another folder")


def _kind(path: Path) -> str | None:
    """'folder', 'file' (anything else that exists), or None when nothing is there."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except NotADirectoryError:  # a file above it: that file is what the caller names
        return None
    except OSError as err:
        raise ConfigError(f"{path}: cannot look at it ({err.strerror or err})") from None
    return "folder" if stat.S_ISDIR(mode) else "file"


def check_study_or_sweep_file(target: str) -> None:
    """ConfigError for a `study report` target that can be neither a study name nor a file's path."""
    problem = path_too_long(target)
    if problem:
        raise ConfigError(f"{shown(target)}: not a study name (at most 100 characters: letters, digits, _ . -) nor "
                          f"a sweep file's path: {problem}")


def report_target_name(target: str) -> str | None:
    """The study a report target names: the name itself, or the `name` of the sweep file it is
    (None when that file cannot be read: the report says why, in its own words)."""
    from study.spec.sweep_file import load_sweep

    if not (target.endswith((".yaml", ".yml")) or _kind(Path(target)) == "file"):
        return target
    try:
        return load_sweep(target).config.name
    except ConfigError:
        return None


def check_report_request(target: str, out: str | Path | None, compare: list[str] | None,
                         error: type[Exception] = ConfigError) -> list[str] | None:
    """Everything about a `study report` that can be refused before its study is read: the target's
    name, `--compare` (at most MAX_COMPARED dimensions, each once) and the output folder (`--out`,
    else reports/<study>). Returns the compared dimensions; raises `error` with one line."""
    try:
        check_study_or_sweep_file(target)
        dimensions = compared_dimensions(compare, most=MAX_COMPARED)
        name = report_target_name(target)
        if out is not None or name is not None:
            check_output_folder(out if out is not None else Path("reports") / name, "--out",
                                REPORT_FILES, REPORT_FOLDERS)
    except ConfigError as err:
        raise error(str(err)) from None
    return dimensions


def check_across_request(targets: list[str], out: str | Path, compare: list[str] | None,
                         error: type[Exception] = ConfigError) -> None:
    """`check_report_request` for a cross-task report: each study's own report folder, the page's
    folder `out`, and no study listed twice (by name, or by a sweep file naming it)."""
    try:
        compared_dimensions(compare, most=MAX_COMPARED)
        names: dict[str, str] = {}
        for target in targets:
            check_study_or_sweep_file(target)
            name = report_target_name(target)
            if name is not None and name in names:
                twice = (f"study {name!r} is listed twice" if names[name] == target else
                         f"{names[name]} and {target} are the same study ({name!r})")
                raise ConfigError(f"{twice}; a cross-task page compares different studies, one per task")
            if name is not None:
                names[name] = target
                check_output_folder(Path("reports") / name, "the report folder", REPORT_FILES, REPORT_FOLDERS)
        check_output_folder(out, "--out", REPORT_FILES, REPORT_FOLDERS)
    except ConfigError as err:
        raise error(str(err)) from None
