"""One debugging session, ``initialize`` to ``disconnect``: the
``zembed-debugger`` thread, which answers requests in order over the DAP
connection to pydevd (``_pydevd``), and switches tracing on and off on the
host's thread.  Imported when a client first
starts the debugger (``_debugger`` is all a kernel loads before that).
"""

from __future__ import annotations

import ast
import json
import logging
import os
import queue
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._dap import (
    ANSWER_TIMEOUT,
    PACKAGE_DIR,
    Dap,
    DebuggerError,
    available,
    mark_untraced,
    namespaces,
    response,
    shown,
)
from ._private import write_private
from ._pydevd import Wire, listen, no_delay, other_debugger, trace_this_thread, unlisten

if TYPE_CHECKING:
    from ._debugger import Debugger
    from ._handlers import Request
    from ._services import KernelServices

log = logging.getLogger("zembed")


class Session:
    """The debugger's thread: requests answered in order, pydevd's events published."""

    def __init__(self, debugger: Debugger, kernel: KernelServices) -> None:
        self._debugger = debugger
        self._kernel = kernel
        self._jobs: queue.SimpleQueue[Request | Callable[[Session], None] | None] = queue.SimpleQueue()
        self._wake = socket.socketpair()
        self._wire: Wire | None = None
        self._answers: dict[int, Dap] = {}  # pydevd's responses, by request_seq, until taken
        self._initialized = False  # pydevd sent its "initialized" event
        self.listening = False  # debugpy listens in this process: pydevd's threads and trace function are there
        self.thread = threading.Thread(target=self._run, name="zembed-debugger", daemon=True)
        mark_untraced(self.thread)
        self.thread.start()

    def put(self, job: Request | Callable[[Session], None] | None) -> None:
        """Queue a request, something to do on the session's thread (a
        callable, given the session), or None: the kernel stops."""
        self._jobs.put(job)
        try:
            self._wake[1].send(b"\0")
        except OSError:
            pass

    def stop_listening(self) -> None:
        """The kernel stops: undo the start on the calling thread (the
        host's, as a rule), the session's thread having ended."""
        if self.listening:
            self.listening = False
            unlisten()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
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
            self._debugger.session_ended(self)
            for end in self._wake:
                end.close()
            self._fail_waiting()

    def _do_jobs(self) -> bool:
        """Handle what is queued; False when the thread should end."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return self._debugger.started or self._wire is not None
            if job is None:  # the kernel stops: close() ends tracing on its own thread
                self._debugger.started = False
                wire, self._wire = self._wire, None
                if wire is not None:
                    wire.close()
                return False
            if callable(job):
                job(self)
                if not self._debugger.started:
                    self._stop_tracing()
                    return False
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
                self._debugger.finish(job, answer)
            if not self._debugger.started:
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
                self._debugger.finish(job, response(job.content, False, message="the debugger stopped"))

    def _request(self, request: Request, dap: Dap) -> Dap | None:
        command = dap["command"]
        arguments = dap.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise DebuggerError("'arguments' must be an object")
        if command == "initialize":
            if not self._debugger.started:
                self._start_tracing()
                answer = self._forward(dap)
                no_delay()
                return answer
            return self._forward(dap)
        if command == "attach":
            return self._attach(dap, arguments)
        if command == "configurationDone":
            return response(dap)  # sent by attach already, as pydevd needs it before answering attach
        if command == "disconnect":
            answer = self._forward(dap)
            self._debugger.forget()
            return answer
        if command == "dumpCell":
            code = arguments.get("code")
            if not isinstance(code, str):
                raise DebuggerError("dumpCell needs arguments.code, a string")
            path = self._debugger.cell_path(code)
            write_private(path, code.encode())
            return response(dap, body={"sourcePath": path})
        if command == "setBreakpoints":
            answer = self._forward(dap)
            source = (arguments.get("source") or {}).get("path")
            if answer.get("success") and isinstance(source, str):
                marks = [{"line": mark["line"]} for mark in answer.get("body", {}).get("breakpoints", [])]
                if marks:
                    self._debugger.breakpoints[source] = marks
                else:
                    self._debugger.breakpoints.pop(source, None)
            return answer
        if command == "source":
            return self._source(dap, arguments)
        if command == "modules":
            return _modules(dap, arguments)
        if command in ("inspectVariables", "richInspectVariables") and not self._debugger.stopped_threads:
            self._debugger.on_host(request, self._debugger.namespace_request)
            return None
        if command == "inspectVariables":
            return self._debugger.namespace_request(dap)
        if command == "richInspectVariables":
            return self._rich_in_frame(dap, arguments)
        if command == "copyToGlobals":
            return self._copy_to_globals(dap, arguments)
        if command == "variables":
            answer = self._forward(dap)
            variables = answer.get("body", {}).get("variables")
            if isinstance(variables, list):
                answer["body"]["variables"] = [v for v in variables if shown(str(v.get("name", "")))]
            return answer
        if command == "stackTrace":
            answer = self._forward(dap)
            frames = answer.get("body", {}).get("stackFrames")
            if isinstance(frames, list):
                kept = [f for f in frames if not str((f.get("source") or {}).get("path", "")).startswith(PACKAGE_DIR)]
                answer["body"]["stackFrames"] = kept
                answer["body"]["totalFrames"] = len(kept)
            return answer
        return self._forward(dap)

    # -- pydevd ----------------------------------------------------------------------

    def _start_tracing(self) -> None:
        """debugpy listens (in process), on the host's thread; then connect."""
        problem = other_debugger()
        if problem:
            raise DebuggerError(problem)
        if not available():
            raise DebuggerError("debugpy is not installed in the host's Python: pip install 'zembed[debug]'")
        outcome: list[Any] = []
        done = threading.Event()
        decided = threading.Lock()  # the host's thread starting against this thread giving up on it
        gave_up = False

        def start() -> None:
            with decided:
                if gave_up:  # it came back too late: the frontend was told already, start nothing
                    return
                try:
                    outcome.append(listen())
                except BaseException as exc:  # reported to the frontend, never raised in the host
                    outcome.append(exc)
                done.set()

        self._kernel.call_on_host(start)
        if not done.wait(ANSWER_TIMEOUT):
            with decided:
                gave_up = not done.is_set()
            if gave_up:
                raise DebuggerError(
                    f"the host's thread did not come back within {ANSWER_TIMEOUT:.0f} s to start tracing"
                )
        result = outcome[0]
        if isinstance(result, BaseException):
            raise DebuggerError(f"debugpy could not start: {type(result).__name__}: {result}")
        self.listening = True
        self._wire = Wire(result[1])
        self._initialized = False
        self._answers.clear()
        self._debugger.started = True
        namespaces[self._debugger.token] = self._kernel.namespace

    def _stop_tracing(self) -> None:
        """Undo everything ``_start_tracing`` did: on the host's thread
        (whose trace function it is), and wait for it."""
        self._debugger.started = False
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.close()
        if not self.listening:
            return
        self.listening = False
        done = threading.Event()

        def stop() -> None:
            try:
                unlisten()
            finally:
                done.set()

        self._kernel.call_on_host(stop)
        if not done.wait(ANSWER_TIMEOUT):
            log.warning("zembed: the host's thread did not come back to stop tracing; it stops when it does")

    def _send(self, command: str, arguments: Dap | None = None) -> int:
        if self._wire is None:
            raise DebuggerError("the debugger is not started: send initialize first")
        seq = next(self._debugger.seq)
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
            wire.wait(timeout)
        try:
            messages = wire.read()
        except (EOFError, OSError) as exc:
            self._wire = None
            self._debugger.started = False
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
                self._debugger.stopped_threads.add(body["threadId"])
            self._debugger.stopped_since = self._debugger.stopped_since or time.monotonic()
        elif name == "continued":
            if body.get("allThreadsContinued", True):
                self._debugger.stopped_threads.clear()
            else:
                self._debugger.stopped_threads.discard(body.get("threadId"))
            if not self._debugger.stopped_threads:
                self._debugger.stopped_since = None
        event["seq"] = next(self._debugger.seq)
        self._kernel.outbox.publish("debug_event", event, self._debugger.parent)
        self._kernel.outbox.flush_soon()

    def _attach(self, dap: Dap, arguments: Dap) -> Dap:
        """pydevd answers attach only after configurationDone, which it
        wants after its initialized event: sent here, so a frontend's own
        configurationDone is answered alone."""
        arguments = dict(arguments)
        arguments.pop("connect", None)
        arguments.pop("listen", None)
        rules = list(arguments.get("rules") or [])
        rules += [{"path": PACKAGE_DIR, "include": False}]
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

    def interrupt(self, interrupt: Callable[[], object]) -> None:
        """An interrupt while the host is stopped: aimed at the cell first,
        then the thread resumed, so it lands as the thread leaves pydevd's
        wait, in the cell (resumed first, a short cell would be over)."""
        interrupt()
        self._resume_all()
        self._kernel.call_on_host(self._trace_again)

    def abandon(self) -> None:
        """The last client left without turning the debugger off: a host
        stopped at a breakpoint would wait for nobody.  Disconnect as a
        frontend would (pydevd resumes its threads), and stop."""
        try:
            self._ask("disconnect", {"restart": False, "terminateDebuggee": False})
        except DebuggerError:
            log.warning("zembed: debugpy did not take the disconnect", exc_info=True)
        log.info("zembed: the last client left with the debugger on: it is turned off and the host runs on")
        self._debugger.forget()

    def _trace_again(self) -> None:
        if self._debugger.started:
            trace_this_thread()

    def _resume_all(self) -> None:
        """Let every stopped thread run on (an interrupt is coming)."""
        for thread_id in sorted(self._debugger.stopped_threads):
            try:
                self._ask("continue", {"threadId": thread_id})
            except DebuggerError:
                log.warning("zembed: could not resume a thread stopped in the debugger", exc_info=True)
        self._debugger.stopped_threads.clear()
        self._debugger.stopped_since = None

    def _source(self, dap: Dap, arguments: Dap) -> Dap:
        path = (arguments.get("source") or {}).get("path")
        if not isinstance(path, str):
            raise DebuggerError("source needs arguments.source.path")
        try:
            return response(dap, body={"content": Path(path).read_text(encoding="utf-8", errors="replace")})
        except OSError as exc:
            raise DebuggerError(f"source unavailable: {exc.strerror or exc}") from exc

    def _rich_in_frame(self, dap: Dap, arguments: Dap) -> Dap:
        name = arguments.get("variableName")
        frame = arguments.get("frameId")
        if not isinstance(name, str) or not name.isidentifier():
            return response(dap, body={"data": {}, "metadata": {}})
        expression = f"__import__('zembed._dap', fromlist=['rich_json']).rich_json({name})"
        answer = self._ask("evaluate", {"expression": expression, "frameId": frame, "context": "clipboard"})
        if not answer.get("success"):
            return response(dap, False, message=str(answer.get("message", "evaluation failed")))
        return response(dap, body=json.loads(ast.literal_eval(answer["body"]["result"])))

    def _copy_to_globals(self, dap: Dap, arguments: Dap) -> Dap:
        source, target = arguments.get("srcVariableName"), arguments.get("dstVariableName")
        if not all(isinstance(name, str) and name.isidentifier() for name in (source, target)):
            raise DebuggerError("dstVariableName and srcVariableName must be identifiers")
        expression = (
            "__import__('zembed._dap', fromlist=['copy_to_namespace'])"
            f".copy_to_namespace({self._debugger.token}, {target!r}, {source})"
        )
        answer = self._ask(
            "evaluate", {"expression": expression, "frameId": arguments.get("srcFrameId"), "context": "repl"}
        )
        if not answer.get("success"):
            return response(dap, False, message=str(answer.get("message", "evaluation failed")))
        return response(dap, body={"value": repr(self._kernel.namespace.get(str(target)))[:200]})


def _modules(dap: Dap, arguments: Dap) -> Dap:
    """The host's modules that have a Python file, for JupyterLab's "kernel
    sources" (where breakpoints in the host's own code are set)."""
    debugpy = sys.modules.get("debugpy")
    unlisted = (PACKAGE_DIR, *([os.path.dirname(debugpy.__file__)] if debugpy and debugpy.__file__ else []))
    listed: list[Dap] = []
    for module in list(sys.modules.values()):
        # A script run as __main__ (a host's own, often) has no spec, only a file
        origin = getattr(getattr(module, "__spec__", None), "origin", None) or getattr(module, "__file__", None)
        if isinstance(origin, str) and origin.endswith(".py") and not origin.startswith(unlisted):
            listed.append({"id": len(listed), "name": module.__name__, "path": origin})
    start = arguments.get("startModule", 0)
    count = arguments.get("moduleCount", 0)
    start = start if isinstance(start, int) and start > 0 else 0
    end = start + count if isinstance(count, int) and count > 0 else len(listed)
    return response(dap, body={"modules": listed[start:end], "totalModules": len(listed)})
