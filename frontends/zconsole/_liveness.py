"""Is the host still there, and where is it now?

``watch`` pings the heartbeat (it runs in C on the host's side, so it
answers while Python is busy) and returns when the host is dead;
``successor`` finds the kernel to re-attach to afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zembed.frontend import ConnectionFileError, KernelRecord, pid_gone, report_for, resolve
from zembed.frontend import describe_crash as describe

from ._link import KernelLink

HEARTBEAT_EVERY = 0.5  # seconds between heartbeat pings
HEARTBEAT_TIMEOUT = 0.8  # a ping unanswered this long is a miss
BUSY_AFTER = 1.0  # seconds the host may be away before the console says it is busy


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
    return found if found.alive else None


def crash_report(record: KernelRecord, wait: float = 2.0) -> dict[str, Any] | None:
    """The dead host's crash report (zembed kernels on this machine), or
    None.  Blocking: the host may still be writing it, for ``wait`` s."""
    meta = record.info.get("zembed")
    app_dir = meta.get("app_dir") if isinstance(meta, dict) else None
    if not isinstance(app_dir, str) or record.pid is None:
        return None
    try:
        return report_for(Path(app_dir), record.pid, wait=wait)
    except OSError:
        return None


@dataclass
class Ending:
    """How a kernel the console was attached to went away."""

    kind: str  # "died" (crash, kill), "stopped" (the host stopped its kernel and runs on), "exited"
    report: dict[str, Any] | None = None  # the crash report, when one was already there

    @property
    def verb(self) -> str:
        return {"died": "the host died", "stopped": "the host stopped its kernel", "exited": "the host exited"}[
            self.kind
        ]


def ending(record: KernelRecord) -> Ending:
    """Tell a crash from a clean stop, once the heartbeat is gone.  A clean
    ``kernel.stop()`` (or a client's shutdown) removes the connection file
    before it closes the sockets and leaves no run record; a crash leaves
    both, and the record becomes a crash report.  Blocking: run in a thread."""
    report = crash_report(record, wait=0.0)
    if report is not None:
        return Ending("died", report)
    if not record.connection_file.exists():
        if record.pid is not None and not pid_gone(record.pid):
            return Ending("stopped")
        return Ending("exited")
    return Ending("died")


def crash_text(report: dict[str, Any]) -> str:
    return describe(report)


def waiting_reason(status: dict[str, Any], own_session: str) -> tuple[str | None, bool]:
    """Why a cell of ``own_session`` has not run yet, from a zembed
    kernel's ``kernel_info`` status (``zembed``), and whether the host
    counts as busy: another client's cell runs (perhaps waiting for that
    client's input), or the host's thread is away (its own code, or a poll
    host not polling).  (None, False) when nothing holds the cell up."""
    running = status.get("running_cell")
    if isinstance(running, dict) and running.get("session") != own_session:
        who = f"{running.get('username', '?')}@{str(running.get('session', '?'))[:6]}"
        cell = f"In [{running.get('execution_count')}] of another client ({who})"
        if running.get("waiting_for_input"):
            return f"waiting for {cell}: it waits for input from that client", False
        return f"waiting for {cell}, running for {float(running.get('seconds') or 0):.0f} s", False
    debugger = status.get("debugger")
    if isinstance(debugger, dict) and debugger.get("stopped"):
        stopped = float(debugger.get("stopped_seconds") or 0)
        return f"host stopped at a breakpoint for {stopped:.0f} s: continue it from the debugger", False
    seconds = status.get("host_busy_seconds") if not status.get("executing") else None
    away = float(seconds) if isinstance(seconds, (int, float)) else 0.0
    if away < BUSY_AFTER:
        return None, False
    if status.get("loop") == "poll":
        return f"host busy: it has not called kernel.poll() for {away:.0f} s", True
    return f"host busy for {away:.0f} s: its main thread is not running kernel work", True
