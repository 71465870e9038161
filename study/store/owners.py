"""Which process owns a run: `host:pid:start time`, written as a run's `owner_process` tag, and
whether that process still runs (so a RUNNING run of a live process is never taken for a leftover)."""

from __future__ import annotations

import os
import socket


def _start_time(pid: int) -> str:
    """A process's start time in clock ticks since boot (Linux), so a reused pid is not taken for it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def process_owner() -> str:
    """This process as `host:pid:start time`, the `owner_process` tag of the runs it writes."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def owner_alive(owner: str) -> bool | None:
    """Whether the process an `owner_process` tag names still runs; None when it cannot be told
    (another machine, or a run written before runs named their process)."""
    host, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    current = _start_time(int(pid))
    return not (current and started != current)
