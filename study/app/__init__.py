"""The user's entry points: the `study` command and suites."""
