"""Is a process still there, and is it still the same process?

Two answers to one question, kept together: ``pid_gone`` (discovery, the
console's watch, crash records) and ``process_identity`` (a crash record
tells its host from a later process that got the same pid).
"""

from __future__ import annotations

import os
from pathlib import Path


def pid_gone(pid: int) -> bool:
    """Is the process gone?  A dead child its parent has not reaped yet
    still has a pid (Linux: state Z); it counts as gone."""
    try:
        os.kill(pid, 0)  # signal 0: an existence check, nothing is sent
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: it exists
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS, Windows): it exists
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def process_identity(pid: int) -> str | None:
    """What tells this process from a later one with the same pid: the boot
    id and the start time in clock ticks (Linux ``/proc``); None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "(comm)", which may hold spaces
    return f"{boot}:{fields[19]}"  # field 22 of proc(5): starttime
