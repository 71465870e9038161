"""The user's entry points: the `study` command, what it shows on a terminal, the servers of its UIs, suites, and the Python API."""
