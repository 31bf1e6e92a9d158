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
(``handle``).  One ``zembed-debugger`` thread, alive from ``initialize`` to
``disconnect``, owns the TCP connection to pydevd, answers the requests in
order and publishes pydevd's events.  Tracing is switched on and off on the
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

import ast
import importlib.util
import itertools
import json
import logging
import os
import queue
import re
import selectors
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._private import remove_quietly, write_private

if TYPE_CHECKING:
    from ._handlers import Request
    from ._services import KernelServices

log = logging.getLogger("zembed")

Dap = dict[str, Any]
HASH_SEED = 0xC70F6907  # the seed debugInfo gives frontends (ipykernel's, so a frontend's cached names agree)
ANSWER_TIMEOUT = 30.0  # seconds pydevd (or the host's thread, to start tracing) has to answer
_MASK = 0xFFFFFFFF
_PACKAGE_DIR = str(Path(__file__).resolve().parent)
# Names a namespace listing leaves out: the interpreter's and zembed's own, and cell results ``_1``
_HIDDEN = frozenset(("__name__", "__doc__", "__package__", "__loader__", "__spec__", "__annotations__"))
_HIDDEN_PATTERN = re.compile(r"^(__builtins__|__builtin__|_\d+|_i\d*|_|__|___)$")
_namespaces: dict[int, dict[str, Any]] = {}  # copyToGlobals' target, by debugger: found from a stopped frame


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


def available() -> bool:
    """debugpy can be imported (the ``debug`` extra)."""
    return _debugpy_found()


_found: list[bool] = []


def _debugpy_found() -> bool:
    if not _found:
        _found.append(importlib.util.find_spec("debugpy") is not None)
    return _found[0]


def response(request: Dap, success: bool = True, body: Dap | None = None, message: str | None = None) -> Dap:
    """A DAP response to ``request`` (its ``seq`` is set when it is sent)."""
    seq = request.get("seq")
    reply: Dap = {
        "type": "response",
        "request_seq": seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
        "success": success,
        "command": str(request.get("command", "")),
        "body": body or {},
    }
    if message is not None:
        reply["message"] = message
    return reply


class DebuggerError(Exception):
    """Why a debug request failed: its text is the DAP response's ``message``."""


def mark_untraced(thread: threading.Thread) -> None:
    """pydevd neither traces nor suspends ``thread``, nor lists it."""
    thread.pydev_do_not_trace = True  # type: ignore[attr-defined]
    thread.is_pydev_daemon_thread = True  # type: ignore[attr-defined]


def rich_json(value: Any) -> str:
    """``value``'s mime bundle as JSON: evaluated in a stopped frame for
    ``richInspectVariables``, read back with ``ast.literal_eval``."""
    from ._display import format_bundle

    data, metadata = format_bundle(value)
    return json.dumps({"data": data, "metadata": metadata}, default=str)


def copy_to_namespace(token: int, name: str, value: Any) -> None:
    """``copyToGlobals``: evaluated in a stopped frame, which may be a host
    module's, so the kernel's namespace is found by its debugger's token."""
    _namespaces[token][name] = value


class _Wire:
    """The DAP connection to pydevd: ``Content-Length`` framed JSON."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self._buffer = b""

    def send(self, message: Dap) -> None:
        body = json.dumps(message).encode()
        self.sock.setblocking(True)
        try:
            self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        finally:
            self.sock.setblocking(False)

    def read(self) -> list[Dap]:
        """What arrived; raises EOFError when pydevd closed the connection."""
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return []
        if not data:
            raise EOFError("pydevd closed the debug connection")
        self._buffer += data
        messages = []
        while True:
            head, separator, rest = self._buffer.partition(b"\r\n\r\n")
            if not separator:
                break
            length = int(head.split(b":", 1)[1])
            if len(rest) < length:
                break
            messages.append(json.loads(rest[:length]))
            self._buffer = rest[length:]
        return messages

    def close(self) -> None:
        self.sock.close()


class Debugger:
    """One kernel's debugger: Jupyter's debug requests, answered in order."""

    def __init__(self, kernel: KernelServices, cells_dir: Path | None = None) -> None:
        self._kernel = kernel
        self.cells_dir = cells_dir or Path(tempfile.gettempdir()) / f"zembed-debug-{os.getuid()}" / str(os.getpid())
        self.started = False  # initialize succeeded, disconnect not yet
        self.breakpoints: dict[str, list[Dap]] = {}
        self.stopped_threads: set[int] = set()
        self.stopped_since: float | None = None
        self._jobs: queue.SimpleQueue[Request | Callable[[], object] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._wire: _Wire | None = None
        self._seq = itertools.count(1)  # seq of what this kernel sends: to pydevd, and to frontends
        self._answers: dict[int, Dap] = {}  # pydevd's responses, by request_seq, until taken
        self._initialized = False  # pydevd sent its "initialized" event
        self._parent: Dap | None = None  # the last debug_request's header: events' parent
        self._listening = False  # debugpy listens in this process: pydevd's threads and trace function are there
        self._token = id(self)
        self._lock = threading.Lock()  # the thread's life against what is queued for it

    # -- the socket thread -----------------------------------------------------------

    def handle(self, request: Request) -> None:
        """A ``debug_request``: answered now if it needs nothing else,
        else queued for the debugger's thread (started by ``initialize``)."""
        dap = request.content
        self._parent = request.message.header
        command = dap.get("command")
        seq = dap.get("seq")
        if dap.get("type") != "request" or not isinstance(command, str) or not isinstance(seq, int):
            self._finish(
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
            self._finish(request, response(dap, body=self.info()))
            return
        with self._lock:
            if self._thread is None and command == "initialize":
                self._start_thread()
            if self._thread is not None:
                self._jobs.put(request)
                self._wake_thread()
                return
        if command in ("inspectVariables", "richInspectVariables"):
            self._on_host(request, self._namespace_request)
        elif command == "disconnect":
            self._finish(request, response(dap))
        else:
            why = "the debugger is not started: send initialize first"
            self._finish(request, response(dap, False, message=why))

    def info(self) -> Dap:
        """``debugInfo``'s body: how frontends name cells, and the state to restore."""
        return {
            "isStarted": self.started,
            "hashMethod": "Murmur2",
            "hashSeed": HASH_SEED,
            "tmpFilePrefix": str(self.cells_dir) + os.sep,
            "tmpFileSuffix": ".py",
            "breakpoints": [{"source": path, "breakpoints": marks} for path, marks in self.breakpoints.items()],
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
            if self._thread is None or not self.stopped_threads:
                return False
            self._jobs.put(callback)
            self._wake_thread()
            return True

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
            thread = self._thread
            if thread is not None:
                self._jobs.put(None)
                self._wake_thread()
        if thread is not None:
            thread.join(ANSWER_TIMEOUT)
        if self._listening:
            self._listening = False
            _unlisten()
        _namespaces.pop(self._token, None)
        if self.cells_dir.is_dir():
            for cell in self.cells_dir.glob("*.py"):
                remove_quietly(cell)
            try:
                self.cells_dir.rmdir()
            except OSError:
                pass

    # -- the debugger's thread -------------------------------------------------------

    def _start_thread(self) -> None:
        self._wake = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="zembed-debugger", daemon=True)
        mark_untraced(self._thread)
        self._thread.start()

    def _wake_thread(self) -> None:
        wake = self._wake
        if wake is not None:
            try:
                wake[1].send(b"\0")
            except OSError:
                pass

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        assert self._wake is not None
        selector.register(self._wake[0], selectors.EVENT_READ)
        registered = False
        try:
            while True:
                if self._wire is not None and not registered:
                    selector.register(self._wire.sock, selectors.EVENT_READ)
                    registered = True
                for key, _ in selector.select():
                    if key.fileobj is self._wake[0]:
                        self._wake[0].recv(4096)
                    else:
                        self._read_wire()
                if not self._do_jobs():
                    return
                if self._wire is None and registered:
                    registered = False
                    selector = selectors.DefaultSelector()
                    selector.register(self._wake[0], selectors.EVENT_READ)
        except Exception:
            log.exception("zembed: the debugger's thread failed; the debugger is stopped")
            try:
                self._stop_tracing()
            except Exception:
                log.exception("zembed: tracing could not be stopped")
        finally:
            selector.close()
            with self._lock:
                wake, self._wake = self._wake, None
                self._thread = None
            for end in wake or ():
                end.close()
            self._fail_waiting()

    def _do_jobs(self) -> bool:
        """Handle what is queued; False when the thread should end."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return self.started or self._wire is not None
            if job is None:  # the kernel stops: close() ends tracing on its own thread
                self.started = False
                wire, self._wire = self._wire, None
                if wire is not None:
                    wire.close()
                return False
            if callable(job):  # the interrupt lands as the thread leaves pydevd's wait, in the cell
                job()
                self._resume_all()
                self._kernel.call_on_host(self._trace_again)
                continue
            dap = job.content
            try:
                answer = self._request(job, dap)
            except DebuggerError as exc:
                answer = response(dap, False, message=str(exc))
            except Exception as exc:  # a request this code did not expect: answered, never fatal
                log.warning("zembed: debug request %r failed", dap.get("command"), exc_info=True)
                answer = response(dap, False, message=f"{type(exc).__name__}: {exc}")
            if answer is not None:
                self._finish(job, answer)
            if not self.started:
                self._stop_tracing()
                return False

    def _fail_waiting(self) -> None:
        """Requests still queued when the thread ends get an answer."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None and not callable(job):
                self._finish(job, response(job.content, False, message="the debugger stopped"))

    def _request(self, request: Request, dap: Dap) -> Dap | None:
        command = dap["command"]
        arguments = dap.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise DebuggerError("'arguments' must be an object")
        if command == "initialize":
            if not self.started:
                self._start_tracing()
                answer = self._forward(dap)
                _no_delay_in_pydevd()
                return answer
            return self._forward(dap)
        if command == "attach":
            return self._attach(dap, arguments)
        if command == "configurationDone":
            return response(dap)  # sent by attach already, as pydevd needs it before answering attach
        if command == "disconnect":
            answer = self._forward(dap)
            self.started = False
            self.breakpoints.clear()
            self.stopped_threads.clear()
            self.stopped_since = None
            return answer
        if command == "dumpCell":
            code = arguments.get("code")
            if not isinstance(code, str):
                raise DebuggerError("dumpCell needs arguments.code, a string")
            path = self.cell_path(code)
            write_private(path, code.encode())
            return response(dap, body={"sourcePath": path})
        if command == "setBreakpoints":
            answer = self._forward(dap)
            source = (arguments.get("source") or {}).get("path")
            if answer.get("success") and isinstance(source, str):
                marks = [{"line": mark["line"]} for mark in answer.get("body", {}).get("breakpoints", [])]
                if marks:
                    self.breakpoints[source] = marks
                else:
                    self.breakpoints.pop(source, None)
            return answer
        if command == "source":
            return self._source(dap, arguments)
        if command in ("inspectVariables", "richInspectVariables") and not self.stopped_threads:
            self._on_host(request, self._namespace_request)
            return None
        if command == "inspectVariables":
            return self._namespace_request(dap)
        if command == "richInspectVariables":
            return self._rich_in_frame(dap, arguments)
        if command == "copyToGlobals":
            return self._copy_to_globals(dap, arguments)
        if command == "variables":
            answer = self._forward(dap)
            variables = answer.get("body", {}).get("variables")
            if isinstance(variables, list):
                answer["body"]["variables"] = [v for v in variables if _shown(str(v.get("name", "")))]
            return answer
        if command == "stackTrace":
            answer = self._forward(dap)
            frames = answer.get("body", {}).get("stackFrames")
            if isinstance(frames, list):
                kept = [f for f in frames if not str((f.get("source") or {}).get("path", "")).startswith(_PACKAGE_DIR)]
                answer["body"]["stackFrames"] = kept
                answer["body"]["totalFrames"] = len(kept)
            return answer
        return self._forward(dap)

    # -- pydevd ----------------------------------------------------------------------

    def _start_tracing(self) -> None:
        """debugpy listens (in process), on the host's thread; then connect."""
        problem = _other_debugger()
        if problem:
            raise DebuggerError(problem)
        if not available():
            raise DebuggerError("debugpy is not installed in the host's Python: pip install 'zembed[debug]'")
        outcome: list[Any] = []
        done = threading.Event()

        def listen() -> None:
            try:
                outcome.append(_listen())
            except BaseException as exc:  # reported to the frontend, never raised in the host
                outcome.append(exc)
            done.set()

        self._kernel.call_on_host(listen)
        if not done.wait(ANSWER_TIMEOUT):
            raise DebuggerError(f"the host's thread did not come back within {ANSWER_TIMEOUT:.0f} s to start tracing")
        result = outcome[0]
        if isinstance(result, BaseException):
            raise DebuggerError(f"debugpy could not start: {type(result).__name__}: {result}")
        self._listening = True
        self._wire = _Wire(result[1])
        self._initialized = False
        self._answers.clear()
        self.started = True
        _namespaces[self._token] = self._kernel.namespace

    def _stop_tracing(self) -> None:
        """Undo everything ``_start_tracing`` did: on the host's thread
        (whose trace function it is), and wait for it."""
        self.started = False
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.close()
        if not self._listening:
            return
        self._listening = False
        done = threading.Event()

        def stop() -> None:
            try:
                _unlisten()
            finally:
                done.set()

        self._kernel.call_on_host(stop)
        if not done.wait(ANSWER_TIMEOUT):
            log.warning("zembed: the host's thread did not come back to stop tracing; it stops when it does")

    def _send(self, command: str, arguments: Dap | None = None) -> int:
        if self._wire is None:
            raise DebuggerError("the debugger is not started: send initialize first")
        seq = next(self._seq)
        message: Dap = {"seq": seq, "type": "request", "command": command}
        if arguments is not None:
            message["arguments"] = arguments
        self._wire.send(message)
        return seq

    def _await(self, seq: int) -> Dap:
        """pydevd's response to request ``seq``; events meanwhile are published."""
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while seq not in self._answers:
            self._read_wire(deadline - time.monotonic())
            if time.monotonic() > deadline:
                raise DebuggerError(f"debugpy did not answer within {ANSWER_TIMEOUT:.0f} s")
        return self._answers.pop(seq)

    def _ask(self, command: str, arguments: Dap | None = None) -> Dap:
        return self._await(self._send(command, arguments))

    def _forward(self, dap: Dap) -> Dap:
        """Send a frontend's request to pydevd; its response, with the frontend's seq."""
        answer = self._ask(dap["command"], dap.get("arguments"))
        answer["request_seq"] = dap["seq"]
        return answer

    def _read_wire(self, timeout: float = 0.0) -> None:
        wire = self._wire
        if wire is None:
            raise DebuggerError("the debugger stopped")
        if timeout > 0:
            selectors_ = selectors.DefaultSelector()
            selectors_.register(wire.sock, selectors.EVENT_READ)
            try:
                selectors_.select(timeout)
            finally:
                selectors_.close()
        try:
            messages = wire.read()
        except (EOFError, OSError) as exc:
            self._wire = None
            self.started = False
            log.warning("zembed: the debugger's connection to debugpy ended: %s", exc)
            raise DebuggerError(str(exc)) from exc
        for message in messages:
            if message.get("type") == "response":
                self._answers[int(message.get("request_seq", -1))] = message
            elif message.get("type") == "event":
                self._on_event(message)

    def _on_event(self, event: Dap) -> None:
        name = event.get("event")
        body = event.get("body") or {}
        if name == "initialized":
            self._initialized = True
        elif name == "stopped":
            if isinstance(body.get("threadId"), int):
                self.stopped_threads.add(body["threadId"])
            self.stopped_since = self.stopped_since or time.monotonic()
        elif name == "continued":
            if body.get("allThreadsContinued", True):
                self.stopped_threads.clear()
            else:
                self.stopped_threads.discard(body.get("threadId"))
            if not self.stopped_threads:
                self.stopped_since = None
        event["seq"] = next(self._seq)
        self._kernel.outbox.publish("debug_event", event, self._parent)
        self._kernel.outbox.flush_soon()

    def _attach(self, dap: Dap, arguments: Dap) -> Dap:
        """pydevd answers attach only after configurationDone, which it
        wants after its initialized event: sent here, so a frontend's own
        configurationDone is answered alone."""
        arguments = dict(arguments)
        arguments.pop("connect", None)
        arguments.pop("listen", None)
        rules = list(arguments.get("rules") or [])
        rules += [{"path": _PACKAGE_DIR, "include": False}]
        arguments["rules"] = rules
        seq = self._send("attach", arguments)
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while not self._initialized and seq not in self._answers:
            self._read_wire(deadline - time.monotonic())
            if time.monotonic() > deadline:
                raise DebuggerError("debugpy did not say it was initialized")
        self._ask("configurationDone")
        answer = self._await(seq)
        answer["request_seq"] = dap["seq"]
        return answer

    def _trace_again(self) -> None:
        """On the host's thread, after an interrupted cell: the interrupt
        left pydevd's trace function by an exception, which unsets it."""
        if self.started and sys.gettrace() is None:
            import debugpy

            debugpy.debug_this_thread()

    def _resume_all(self) -> None:
        """Let every stopped thread run on (an interrupt is coming)."""
        for thread_id in sorted(self.stopped_threads):
            try:
                self._ask("continue", {"threadId": thread_id})
            except DebuggerError:
                log.warning("zembed: could not resume a thread stopped in the debugger", exc_info=True)
        self.stopped_threads.clear()
        self.stopped_since = None

    # -- Jupyter's additions ---------------------------------------------------------

    def _source(self, dap: Dap, arguments: Dap) -> Dap:
        path = (arguments.get("source") or {}).get("path")
        if not isinstance(path, str):
            raise DebuggerError("source needs arguments.source.path")
        try:
            return response(dap, body={"content": Path(path).read_text(encoding="utf-8", errors="replace")})
        except OSError as exc:
            raise DebuggerError(f"source unavailable: {exc.strerror or exc}") from exc

    def _namespace_request(self, dap: Dap) -> Dap:
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

    def _rich_in_frame(self, dap: Dap, arguments: Dap) -> Dap:
        name = arguments.get("variableName")
        frame = arguments.get("frameId")
        if not isinstance(name, str) or not name.isidentifier():
            return response(dap, body={"data": {}, "metadata": {}})
        expression = f"__import__('zembed._debugger', fromlist=['rich_json']).rich_json({name})"
        answer = self._ask("evaluate", {"expression": expression, "frameId": frame, "context": "clipboard"})
        if not answer.get("success"):
            return response(dap, False, message=str(answer.get("message", "evaluation failed")))
        return response(dap, body=json.loads(ast.literal_eval(answer["body"]["result"])))

    def _copy_to_globals(self, dap: Dap, arguments: Dap) -> Dap:
        source, target = arguments.get("srcVariableName"), arguments.get("dstVariableName")
        if not all(isinstance(name, str) and name.isidentifier() for name in (source, target)):
            raise DebuggerError("dstVariableName and srcVariableName must be identifiers")
        expression = (
            f"__import__('zembed._debugger', fromlist=['copy_to_namespace'])"
            f".copy_to_namespace({self._token}, {target!r}, {source})"
        )
        answer = self._ask(
            "evaluate", {"expression": expression, "frameId": arguments.get("srcFrameId"), "context": "repl"}
        )
        if not answer.get("success"):
            return response(dap, False, message=str(answer.get("message", "evaluation failed")))
        return response(dap, body={"value": repr(self._kernel.namespace.get(str(target)))[:200]})

    # -- replies ---------------------------------------------------------------------

    def _on_host(self, request: Request, answer: Callable[[Dap], Dap]) -> None:
        def run() -> None:
            try:
                reply = answer(request.content)
            except Exception as exc:
                reply = response(request.content, False, message=f"{type(exc).__name__}: {exc}")
            self._finish(request, reply)

        self._kernel.call_on_host(run)

    def _finish(self, request: Request, answer: Dap) -> None:
        answer["seq"] = next(self._seq)
        request.finish(answer)
        self._kernel.outbox.flush_soon()


def _shown(name: str) -> bool:
    return name not in _HIDDEN and not _HIDDEN_PATTERN.match(name)


def _variables(namespace: dict[str, Any]) -> list[Dap]:
    """The namespace as DAP variables, without children: pydevd's own
    formatting is only there while a frame is stopped."""
    listed = []
    for name, value in list(namespace.items()):
        if not _shown(name) or type(value).__name__ == "module":
            continue
        try:
            text = repr(value)
        except Exception as exc:
            text = f"<repr failed: {type(exc).__name__}>"
        if len(text) > 200:
            text = text[:197] + "..."
        listed.append({"name": name, "value": text, "type": type(value).__name__, "variablesReference": 0})
    return listed


def _other_debugger() -> str | None:
    """Why this process cannot take zembed's debugger: another debugger or
    a tracer (PyCharm's or VS Code's pydevd, debugpy started by the host,
    coverage) is already in it."""
    pydevd = sys.modules.get("pydevd")
    if pydevd is not None:
        try:
            existing = pydevd.get_global_debugger()
        except Exception:
            existing = None
        if existing is not None and not getattr(existing, "pydb_disposed", False):
            return "another debugger (pydevd: PyCharm, VS Code or debugpy) is attached to this host; detach it first"
    tracer = threading.gettrace()
    if tracer is not None:
        return f"a trace function ({_describe(tracer)}) is set for this host's threads; debugging would replace it"
    return None


def _describe(tracer: Any) -> str:
    owner = getattr(tracer, "__self__", tracer)
    return f"{type(owner).__module__}.{type(owner).__qualname__}"


def _listen() -> tuple[str, int]:
    """On the host's thread: debugpy's in-process adapter; its (host, port)."""
    tracer = sys.gettrace()
    if tracer is not None:
        raise RuntimeError(f"the host's thread already has a trace function ({_describe(tracer)})")
    saved = os.environ.get("PYDEVD_DISABLE_FILE_VALIDATION")
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # its frozen-modules advice would go to the host's stderr
    try:
        import debugpy
        from debugpy.server import api
    finally:
        if saved is None:
            del os.environ["PYDEVD_DISABLE_FILE_VALIDATION"]
        else:
            os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = saved
    if api.listen.called and not getattr(api.listen, "zembed", False):  # type: ignore[attr-defined]
        raise RuntimeError("the host called debugpy.listen() itself; attach to that debugger instead")
    api.listen.called = False  # type: ignore[attr-defined]  # zembed's own earlier session, stopped: listen again
    host, port = debugpy.listen(("127.0.0.1", 0), in_process_debug_adapter=True)
    api.listen.zembed = True  # type: ignore[attr-defined]
    return str(host), int(port)


def _no_delay_in_pydevd() -> None:
    """pydevd writes a message's header and body in two sends: with Nagle's
    algorithm against this side's delayed ACK each answer took 40 ms."""
    try:
        import pydevd

        writer = pydevd.get_global_debugger().writer
        writer.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except Exception:  # another pydevd: slower answers, nothing worse
        log.debug("zembed: could not set TCP_NODELAY on pydevd's socket", exc_info=True)


def _unlisten() -> None:
    """On the host's thread: pydevd stops tracing and ends its threads.

    ``stoptrace()`` ends all but one: the thread waiting for the next
    connection sits in ``accept()``, which closing a socket does not wake on
    Linux; it is told to end and woken by shutting its socket down."""
    import pydevd

    waiting = getattr(pydevd.get_global_debugger(), "_waiting_for_connection_thread", None)
    server = getattr(waiting, "_server_socket", None)
    listener = socket.socket(fileno=os.dup(server.fileno())) if server is not None else None
    try:
        pydevd.stoptrace()
        if waiting is not None:
            waiting.do_kill_pydev_thread()
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    finally:
        if listener is not None:
            listener.close()
        sys.settrace(None)
