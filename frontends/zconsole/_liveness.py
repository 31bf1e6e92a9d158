"""Is the host still there, and where is it now?

``watch`` pings the heartbeat (it runs in C on the host's side, so it
answers while Python is busy) and returns when the host is dead;
``successor`` finds the kernel to re-attach to afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from zembed._discovery import KernelRecord, pid_gone, resolve
from zembed._errors import ConnectionFileError
from zembed._recovery import describe, report_for

from ._link import KernelLink

HEARTBEAT_EVERY = 0.5  # seconds between heartbeat pings
HEARTBEAT_TIMEOUT = 0.8  # a ping unanswered this long is a miss


async def watch(link: KernelLink, pid: int | None, still_wanted: Callable[[], bool]) -> bool:
    """Ping until the host dies (True) or the link is no longer wanted
    (False).  Dead: two missed pings, or one and a vanished pid: within
    about 2 s of the death."""
    misses = 0
    while still_wanted():
        if await link.ping(HEARTBEAT_TIMEOUT):
            misses = 0
            await asyncio.sleep(HEARTBEAT_EVERY)
            continue
        misses += 1
        if misses >= 2 or (pid is not None and pid_gone(pid)):
            return still_wanted()
    return False


def successor(record: KernelRecord, wait_for: str | None) -> KernelRecord | None:
    """The newest live kernel of ``record``'s app (or of ``wait_for``, the
    name given to ``--wait``; "" for any kernel); for a kernel without an
    app name (any Jupyter kernel), its connection file, alive again.
    Blocking (it probes heartbeats): run it in a thread."""
    if wait_for is not None:
        spec: str | None = wait_for or None
    else:
        spec = record.app or str(record.connection_file)
    try:
        found = resolve(spec)  # probed: a path comes back whatever its state, a name only when alive
    except (ConnectionFileError, OSError):
        return None
    return found if found.state in ("live", "busy") else None


def crash_report(record: KernelRecord) -> str | None:
    """What the dead host's crash record says (zembed kernels on this
    machine), or None.  Blocking (the host may still be writing it)."""
    meta = record.info.get("zembed")
    app_dir = meta.get("app_dir") if isinstance(meta, dict) else None
    if not isinstance(app_dir, str) or record.pid is None:
        return None
    try:
        report = report_for(Path(app_dir), record.pid)
    except OSError:
        return None
    return describe(report) if report is not None else None
