"""The Jupyter debug protocol, on debugpy.

JupyterLab's debugger (and any client of the Jupyter debug protocol) sends
Debug Adapter Protocol requests inside ``debug_request`` on control and
reads DAP events from ``debug_event`` on iopub.  zembed answers Jupyter's
additions itself (``debugInfo``, ``dumpCell``, ``inspectVariables``,
``richInspectVariables``, ``copyToGlobals``, ``source``) and forwards the
rest to pydevd, debugpy's debugger, which runs in this process behind
debugpy's in-process adapter: there is no adapter subprocess, so no Python
executable to find (in Blender ``sys.executable`` is Blender) and nothing
to outlive the host.

Threads.  Requests arrive on the socket thread, which only queues them
(``handle``).  One ``zembed-debugger`` thread (``_debug_session``, imported
by the first ``initialize``), alive from ``initialize`` to ``disconnect``,
owns the TCP connection to pydevd, answers the requests in order and
publishes pydevd's events.  Tracing is switched on and off on the
host's thread, since ``sys.settrace`` is per thread: after ``disconnect``
the host's thread has no trace function, pydevd's threads have ended and
debugpy can listen again.  zembed's own threads are marked so pydevd never
traces or suspends them: while the host's thread is stopped at a breakpoint
control, heartbeat and iopub carry on.

Cells run with the file name a frontend computes for them (Murmur2 of the
code, with ``HASH_SEED``, in ``cells_dir``) while the debugger is started,
so a breakpoint set in a cell is hit by that cell; otherwise they keep
their ``<In [n]>`` names and the debugger costs nothing.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._dap import ANSWER_TIMEOUT, Dap, namespaces, response, rich_json, shown
from ._private import remove_quietly, write_private

if TYPE_CHECKING:
    from ._debug_session import Session
    from ._handlers import Request
    from ._services import KernelServices

_MASK = 0xFFFFFFFF
HASH_SEED = 0xC70F6907  # the seed debugInfo gives frontends (ipykernel's, so a frontend's cached names agree)


def murmur2(data: bytes, seed: int) -> int:
    """MurmurHash2, 32-bit: the hash JupyterLab names cells with."""
    m = 0x5BD1E995
    length = len(data)
    h = (seed ^ length) & _MASK
    end = length - length % 4
    for i in range(0, end, 4):
        k = (int.from_bytes(data[i : i + 4], "little") * m) & _MASK
        k ^= k >> 24
        h = ((h * m) & _MASK) ^ ((k * m) & _MASK)
    if end < length:
        h = ((h ^ int.from_bytes(data[end:], "little")) * m) & _MASK
    h ^= h >> 13
    h = (h * m) & _MASK
    return h ^ (h >> 15)


class Debugger:
    """One kernel's debugger: Jupyter's debug requests, answered in order."""

    def __init__(self, kernel: KernelServices, cells_dir: Path | None = None) -> None:
        self._kernel = kernel
        # Beside the connection file: a folder of the user's own (not /tmp, where another user could make it first)
        self.cells_dir = cells_dir or Path(kernel.connection_file).parent / f"zembed-debug-{os.getpid()}"
        self.started = False  # initialize succeeded, disconnect not yet
        self.breakpoints: dict[str, list[Dap]] = {}
        self.stopped_threads: set[int] = set()
        self.stopped_since: float | None = None
        self.seq = itertools.count(1)  # seq of what this kernel sends: to pydevd, and to frontends
        self.parent: Dap | None = None  # the last debug_request's header: events' parent
        self.token = id(self)  # copyToGlobals finds the namespace by it
        self._session: Session | None = None  # the debugger's thread, from initialize to disconnect
        self._lock = threading.Lock()  # the session's life against what is queued for it

    # -- the socket thread -----------------------------------------------------------

    def handle(self, request: Request) -> None:
        """A ``debug_request``: answered now if it needs nothing else,
        else queued for the debugger's thread (started by ``initialize``)."""
        dap = request.content
        self.parent = request.message.header
        command = dap.get("command")
        seq = dap.get("seq")
        if dap.get("type") != "request" or not isinstance(command, str) or not isinstance(seq, int):
            self.finish(
                request,
                response(
                    dap,
                    False,
                    message="a debug_request carries a DAP request: "
                    "{'type': 'request', 'seq': int, 'command': str, 'arguments': {...}}",
                ),
            )
            return
        if command == "debugInfo":
            self.finish(request, response(dap, body=self.info()))
            return
        with self._lock:
            if self._session is None and command == "initialize":
                from ._debug_session import Session

                self._session = Session(self, self._kernel)
            if self._session is not None:
                self._session.put(request)
                return
        if command in ("inspectVariables", "richInspectVariables"):
            self.on_host(request, self.namespace_request)
        elif command == "disconnect":
            self.finish(request, response(dap))
        else:
            why = "the debugger is not started: send initialize first"
            self.finish(request, response(dap, False, message=why))

    def info(self) -> Dap:
        """``debugInfo``'s body: how frontends name cells, and the state to restore."""
        return {
            "isStarted": self.started,
            "hashMethod": "Murmur2",
            "hashSeed": HASH_SEED,
            "tmpFilePrefix": str(self.cells_dir) + os.sep,
            "tmpFileSuffix": ".py",
            # list(): one step under the GIL, while the session's thread may be changing them
            "breakpoints": [{"source": path, "breakpoints": marks} for path, marks in list(self.breakpoints.items())],
            "stoppedThreads": sorted(self.stopped_threads),
            "richRendering": True,
            "exceptionPaths": ["Python Exceptions"],
            "copyToGlobals": True,
        }

    def status(self) -> Dap:
        """For ``kernel_info``'s zembed block: clients tell "stopped in the
        debugger" from "busy"."""
        stopped = self.stopped_since is not None
        return {
            "started": self.started,
            "stopped": stopped,
            "stopped_seconds": round(time.monotonic() - self.stopped_since, 3) if self.stopped_since else 0.0,
        }

    def resume_then(self, callback: Callable[[], object]) -> bool:
        """An interrupt while the host is stopped at a breakpoint: let it
        run on, then ``callback`` (the interrupt).  False if not stopped."""
        with self._lock:
            if self._session is None or not self.stopped_threads:
                return False
            self._session.put(lambda session: session.interrupt(callback))
            return True

    def clients_gone(self) -> None:
        """No client is subscribed any more (socket thread): if the
        debugger is on, it is turned off, so a stopped host runs on."""
        with self._lock:
            if self._session is not None and self.started:
                self._session.put(lambda session: session.abandon())

    def forget(self) -> None:
        """The session is over: nothing to restore for the next frontend."""
        self.started = False
        self.breakpoints.clear()
        self.stopped_threads.clear()
        self.stopped_since = None

    # -- the host's thread -----------------------------------------------------------

    def cell_file(self, code: str) -> str | None:
        """The file a cell runs as while the debugger is started (None
        otherwise): the name a frontend computed to set its breakpoints."""
        if not self.started:
            return None
        path = self.cell_path(code)
        if not os.path.exists(path):
            write_private(path, code.encode())
        return path

    def cell_path(self, code: str) -> str:
        return f"{self.cells_dir}{os.sep}{murmur2(code.encode(), HASH_SEED)}.py"

    def close(self) -> None:
        """The kernel stops: end the session from the thread calling stop
        (the host's, as a rule: its trace function is removed there)."""
        with self._lock:
            session = self._session
            if session is not None:
                session.put(None)
        if session is not None:
            session.thread.join(ANSWER_TIMEOUT)
            session.stop_listening()
        namespaces.pop(self.token, None)
        if self.cells_dir.is_dir():
            for cell in self.cells_dir.glob("*.py"):
                remove_quietly(cell)
            try:
                self.cells_dir.rmdir()
            except OSError:
                pass

    def session_ended(self, session: Session) -> None:
        """From the session's thread, as it ends: requests go to a new one."""
        with self._lock:
            if self._session is session:
                self._session = None

    # -- answers ---------------------------------------------------------------------

    def namespace_request(self, dap: Dap) -> Dap:
        """``inspectVariables`` (the kernel's namespace, as pydevd shows
        variables) and ``richInspectVariables`` when no frame is stopped;
        on the host's thread unless the host is stopped in the debugger."""
        namespace = self._kernel.namespace
        if dap["command"] == "richInspectVariables":
            name = (dap.get("arguments") or {}).get("variableName")
            if not isinstance(name, str) or not name.isidentifier() or name not in namespace:
                return response(dap, body={"data": {}, "metadata": {}})
            return response(dap, body=json.loads(rich_json(namespace[name])))
        return response(dap, body={"variables": _variables(namespace)})

    def on_host(self, request: Request, answer: Callable[[Dap], Dap]) -> None:
        """Answer ``request`` on the host's thread (it reads the host's objects)."""

        def run() -> None:
            try:
                reply = answer(request.content)
            except Exception as exc:
                reply = response(request.content, False, message=f"{type(exc).__name__}: {exc}")
            self.finish(request, reply)

        self._kernel.call_on_host(run)

    def finish(self, request: Request, answer: Dap) -> None:
        """Send ``answer`` (any thread), numbered in this kernel's sequence."""
        answer["seq"] = next(self.seq)
        request.finish(answer)
        self._kernel.outbox.flush_soon()


def _variables(namespace: dict[str, Any]) -> list[Dap]:
    """The namespace as DAP variables, without children: pydevd's own
    formatting is only there while a frame is stopped."""
    listed = []
    for name, value in list(namespace.items()):
        if not shown(name) or type(value).__name__ == "module":
            continue
        try:
            text = repr(value)
        except Exception as exc:
            text = f"<repr failed: {type(exc).__name__}>"
        if len(text) > 200:
            text = text[:197] + "..."
        listed.append({"name": name, "value": text, "type": type(value).__name__, "variablesReference": 0})
    return listed
