"""Finding kernels: list connection files, tell live from busy from dead,
resolve "the kernel I mean" from a name or a path.

Every JSON file in the runtime directory that holds the connection keys
is a candidate, zembed's and any other Jupyter kernel's, whatever its name
(``jupyter console --existing`` finds them all the same way); server info
files and anything else are skipped.  State, cheapest test first:

- ``dead``: the file names a pid that is gone, or the heartbeat does not
  echo within the timeout;
- ``busy``: the heartbeat echoes (the process lives) but the kernel says its
  host has not come back for a while (zembed's ``host_busy_seconds``);
- ``live``: otherwise.

Resolution rule (what ``zconsole --existing NAME`` and
``zembed.connect(NAME)`` use): an existing path is taken as it is;
otherwise the newest live or busy kernel whose app name equals NAME (the
``app name`` rule), or whose file name contains it (the ``file name``
rule, jupyter_client's own).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from ._connection import connect as connect_socket
from ._connection import read_connection_file, runtime_dir
from ._errors import ConnectionFileError, ProtocolError
from ._process import pid_gone
from ._protocol import Session

BUSY_AFTER = 1.0  # seconds the host may be away before it counts as busy
MAX_FILE_BYTES = 1 << 20  # a connection file is a few hundred bytes; larger JSON is something else


@dataclass
class KernelRecord:
    """One connection file and what is known about its kernel."""

    connection_file: Path
    info: dict[str, Any]
    modified: float
    state: str = "unknown"  # live, busy, debugging (stopped at a breakpoint), dead, unknown (not probed)
    busy_seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def app(self) -> str | None:
        meta = self.info.get("zembed")
        return str(meta["app"]) if isinstance(meta, dict) and "app" in meta else None

    @property
    def pid(self) -> int | None:
        meta = self.info.get("zembed")
        pid = meta.get("pid") if isinstance(meta, dict) else None
        return pid if isinstance(pid, int) else None

    @property
    def cluster(self) -> dict[str, Any] | None:
        """The kernel's cluster membership (probed), or None."""
        block = self.details.get("zembed")
        membership = block.get("cluster") if isinstance(block, dict) else None
        return membership if isinstance(membership, dict) else None

    @property
    def alive(self) -> bool:
        """Probed and answering (perhaps busy, or stopped in the debugger)."""
        return self.state in ("live", "busy", "debugging")

    @property
    def age_seconds(self) -> float:
        return max(0.0, time.time() - self.modified)

    def match(self, name: str) -> str | None:
        """Which rule makes ``name`` mean this kernel: ``"app name"``,
        ``"file name"`` (a part of it), or None."""
        if self.app == name:
            return "app name"
        if name in self.connection_file.name:
            return "file name"
        return None

    def matches(self, name: str) -> bool:
        return self.match(name) is not None


def find_kernels(directory: str | os.PathLike[str] | None = None) -> list[KernelRecord]:
    """Connection files in ``directory`` (default: the runtime dir), newest first.

    Files that are not Jupyter connection files are skipped.
    """
    folder = Path(directory) if directory is not None else runtime_dir()
    records = []
    try:
        paths = [p for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith(".")]
    except OSError:  # no runtime dir yet: no kernels
        return []
    for path in paths:
        try:
            stat = path.stat()
            if not path.is_file() or stat.st_size > MAX_FILE_BYTES:
                continue
            info = read_connection_file(path)
        except (ConnectionFileError, OSError):
            continue
        records.append(KernelRecord(path, info, stat.st_mtime))
    records.sort(key=lambda r: r.modified, reverse=True)
    return records


def probe(record: KernelRecord, timeout: float = 0.5, context: zmq.Context[Any] | None = None) -> KernelRecord:
    """Fill in ``record.state`` (and ``busy_seconds``, ``details``); return it."""
    if record.pid is not None and pid_gone(record.pid):
        record.state = "dead"
        return record
    if context is None:
        with zmq.Context() as own:  # no process-wide context left behind
            return probe(record, timeout, own)
    ctx = context
    heartbeat = ctx.socket(zmq.REQ)
    heartbeat.linger = 0
    try:
        connect_socket(heartbeat, record.info, "hb")
        heartbeat.send(b"ping")
        if not heartbeat.poll(int(timeout * 1000)):
            record.state = "dead"
            return record
        heartbeat.recv()
    finally:
        heartbeat.close()
    record.state = "live"
    details = _kernel_info(record.info, timeout, ctx)
    record.details = details
    block = details.get("zembed")
    status: dict[str, Any] = block if isinstance(block, dict) else {}
    busy = status.get("host_busy_seconds")
    if isinstance(busy, (int, float)):
        record.busy_seconds = float(busy)
        if busy >= BUSY_AFTER:
            record.state = "busy"
    debugger = status.get("debugger")
    if isinstance(debugger, dict) and debugger.get("stopped"):
        record.state = "debugging"  # stopped at a breakpoint: waiting for a person, not hung
    return record


def _kernel_info(info: dict[str, Any], timeout: float, ctx: zmq.Context[Any]) -> dict[str, Any]:
    """kernel_info over control; {} if it does not answer in time."""
    session = Session(str(info["key"]).encode(), username="zembed-discovery")
    control = ctx.socket(zmq.DEALER)
    control.linger = 0
    try:
        connect_socket(control, info, "control")
        control.send_multipart(session.serialize("kernel_info_request", {}))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and control.poll(int(left * 1000)):
            try:
                reply = session.parse(control.recv_multipart())
            except ProtocolError:
                continue
            if reply.msg_type == "kernel_info_reply":
                return reply.content
        return {}
    finally:
        control.close()


def list_kernels(
    directory: str | os.PathLike[str] | None = None, timeout: float = 0.5, name: str | None = None
) -> list[KernelRecord]:
    """Every kernel in ``directory`` (those ``name`` matches, if given), probed, newest first."""
    records = [r for r in find_kernels(directory) if name is None or r.matches(name)]
    with zmq.Context() as context:
        return [probe(record, timeout, context) for record in records]


def clean(directory: str | os.PathLike[str] | None = None, timeout: float = 0.5) -> list[KernelRecord]:
    """Remove the connection files of dead kernels; return what was removed."""
    removed = []
    for record in list_kernels(directory, timeout):
        if record.state == "dead":
            try:
                record.connection_file.unlink()
            except FileNotFoundError:
                pass
            removed.append(record)
    return removed


def resolve(
    spec: str | os.PathLike[str] | None = None, directory: str | os.PathLike[str] | None = None, timeout: float = 0.5
) -> KernelRecord:
    """The kernel ``spec`` means: a path, an app name, a file-name part, or
    None for the newest live one.  Raises ``ConnectionFileError`` saying what
    exists when nothing matches."""
    if spec is not None and Path(spec).is_file():
        path = Path(spec)
        return probe(KernelRecord(path, read_connection_file(path), path.stat().st_mtime), timeout)
    candidates = find_kernels(directory)
    wanted = [r for r in candidates if spec is None or r.matches(str(spec))]
    for record in wanted:  # newest first: the first one alive wins
        if probe(record, timeout).alive:
            return record
    where = Path(directory) if directory is not None else runtime_dir()
    if not candidates:
        raise ConnectionFileError(f"no kernel connection files in {where}")
    listing = "\n".join(f"  {describe(probe(r, timeout))}" for r in candidates)
    what = "no live kernel" if spec is None else f"no live kernel matches {str(spec)!r}"
    raise ConnectionFileError(f"{what}; kernels in {where}:\n{listing}")


def describe(record: KernelRecord) -> str:
    """One line: app, pid, age, state, file."""
    age = _age(record.age_seconds)
    state = record.state if record.state != "busy" else f"busy {record.busy_seconds:.0f}s"
    line = f"{record.app or '-':<20} {str(record.pid or '-'):>8} {age:>6}  {state:<10} {record.connection_file.name}"
    cluster = record.cluster
    if cluster is not None:
        engine = cluster.get("engine_id")
        line += f"  [engine {engine if engine is not None else '?'}, {cluster.get('state')}]"
    return line


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
