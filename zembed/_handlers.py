"""Request handlers: one function per message type, found through tables.

``handle()`` wraps every request in ``busy``/``idle`` on iopub (spec:
"Kernel status") and turns a handler's exception into an error reply, so a
malformed but correctly signed request is answered, not fatal.  Handlers depend
on ``_services.KernelServices``, never on ``Kernel``.  Handlers in
``SOCKET_THREAD`` run on the socket thread and must not touch the host's
objects; all others run on the host's thread.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._dap import STATUS_OFF
from ._dap import available as debugger_available
from ._execute import error_content
from ._protocol import PROTOCOL_VERSION, Message
from ._ratelimit import RateLimitedLog
from ._version import __version__

if TYPE_CHECKING:
    from ._services import KernelServices

log = logging.getLogger("zembed")
_refused = RateLimitedLog(what="refused requests")  # signed but refused requests: a flood must not fill the disk either
_PYTHON_VERSION = "{}.{}.{}".format(*sys.version_info[:3])

Content = dict[str, Any]
Handler = Callable[["KernelServices", "Request"], Content | None]


class Request:
    """One request being handled: where its replies and outputs go."""

    __slots__ = ("kernel", "channel", "message", "afterwards", "history_change", "deferred")

    def __init__(self, kernel: KernelServices, channel: str, message: Message) -> None:
        self.kernel, self.channel, self.message = kernel, channel, message
        self.afterwards: list[Callable[[], None]] = []  # run after this request's idle
        self.history_change = 0  # the reply waits until the history has this change (journaled or committed)
        self.deferred = False  # answered later, by finish(), from another thread

    @property
    def content(self) -> Content:
        return self.message.content

    def publish(self, msg_type: str, content: Content) -> None:
        self.kernel.outbox.publish(msg_type, content, self.message.header)

    def reply(self, content: Content, msg_type: str | None = None) -> None:
        reply_type = msg_type or self.message.msg_type.replace("_request", "_reply")
        self.kernel.outbox.send(
            self.channel,
            reply_type,
            content,
            self.message.header,
            self.message.idents,
            after_history=self.history_change,
        )

    def finish(self, content: Content) -> None:
        """Reply to a request a handler deferred, then say idle (any thread):
        what ``handle`` does for the others."""
        self.reply(content)
        self.publish("status", {"execution_state": "idle"})
        for callback in self.afterwards:
            callback()


def handle(kernel: KernelServices, channel: str, message: Message, table: dict[str, Handler]) -> None:
    """Answer one request with the handler ``table`` has for its type."""
    request = Request(kernel, channel, message)
    msg_type = message.msg_type
    handler = table.get(msg_type)
    request.publish("status", {"execution_state": "busy"})
    try:
        if handler is None:
            _refused.warning("zembed: unknown message type %r on %s", msg_type, channel)
            content: Content | None = _error_reply(LookupError(f"unknown message type {msg_type!r} on {channel}"))
            if not msg_type.endswith("_request"):
                content = None
        else:
            content = handler(kernel, request)
    except Exception as exc:  # a signed but malformed request: answer it
        _refused.warning("zembed: bad %s: %s: %s", msg_type, type(exc).__name__, exc)
        content = _error_reply(exc)
        request.deferred = False  # it failed before deferring its answer: answered here
    if content is not None:
        request.reply(content)
    if request.deferred:
        return
    request.publish("status", {"execution_state": "idle"})
    for callback in request.afterwards:
        callback()


def refuse(kernel: KernelServices, channel: str, message: Message, problem: Exception) -> None:
    """Answer a request that cannot be handled (part of it unreadable) with
    an error reply, inside busy/idle like any other."""
    handle(kernel, channel, message, {message.msg_type: lambda _kernel, _request: _error_reply(problem)})


def on_socket_thread(channel: str, msg_type: str) -> bool:
    """Control is served entirely on the socket thread, and so is
    kernel_info on shell; the rest of shell goes to the host's thread."""
    return channel == "control" or msg_type in SOCKET_THREAD


def _error_reply(exc: BaseException) -> Content:
    return {"status": "error", **error_content(exc)}


def _field(content: Content, name: str, kind: type, default: Any = ...) -> Any:
    """A typed field of a request's content; a clear error if it is wrong."""
    if name not in content:
        if default is ...:
            raise KeyError(f"request content lacks {name!r}")
        return default
    value = content[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{name!r} must be {kind.__name__}, not {type(value).__name__}")
    return value


# -- socket thread -------------------------------------------------------------


def kernel_info(kernel: KernelServices, request: Request) -> Content:
    return {
        "status": "ok",
        "protocol_version": PROTOCOL_VERSION,
        "implementation": "zembed",
        "implementation_version": __version__,
        "language_info": {
            "name": "python",
            "version": _PYTHON_VERSION,
            "mimetype": "text/x-python",
            "file_extension": ".py",
            "pygments_lexer": "python3",
            "codemirror_mode": {"name": "python", "version": 3},
            "nbconvert_exporter": "python",
        },
        "banner": _banner(kernel),
        "help_links": [{"text": "zembed documentation", "url": "https://zembed.readthedocs.io"}],
        "supported_features": ["debugger"] if debugger_available() else [],
        "debugger": debugger_available(),
        "zembed": {
            "app": kernel.name,
            "pid": _pid(),
            "loop": kernel.loop,
            "connection_file": str(kernel.connection_file),
            "executing": kernel.executing,
            "host_busy_seconds": round(kernel.host_busy_seconds(), 3),
            "running_cell": kernel.running_cell(),
            "execution_count": kernel.execution_count,
            "crashes": kernel.crashes,
            "history": {"session": kernel.history.session_if_ready, "problem": kernel.history.problem},
            "encrypted": "curve_publickey" in kernel.connection_info,
            "debugger": kernel.debugger.status() if kernel.debugger else dict(STATUS_OFF),
            "cluster": kernel.cluster,  # engine id, controller file, state; None when in no cluster
        },
    }


def _banner(kernel: KernelServices) -> str:
    text = (
        f"zembed {__version__}: a kernel inside {kernel.name!r} (pid {_pid()}), "
        f"Python {_PYTHON_VERSION}, host loop {kernel.loop}\n"
    )
    if kernel.config.name_derived:
        text += f"(app name {kernel.name!r} is the host program's name; the host can pass name= to choose one)\n"
    for crash in kernel.crashes:
        text += f"!! {crash['text']}\n   the report: zembed crashes {kernel.name}\n"
    if kernel.history.problem:
        text += f"!! {kernel.history.problem}\n"
    return text


def _pid() -> int:
    return os.getpid()


def interrupt(kernel: KernelServices, request: Request) -> Content:
    interrupted = kernel.interrupt()
    log.info("zembed: interrupt requested (%s)", "cell interrupted" if interrupted else "no cell running")
    return {"status": "ok"}


def shutdown(kernel: KernelServices, request: Request) -> Content | None:
    restart = bool(request.content.get("restart", False))
    request.reply({"status": "ok", "restart": restart})
    log.info("zembed: shutdown_request from a client: detaching; the host keeps running")
    kernel.detach(restart)
    return None  # already replied, before the socket thread winds down


# -- host thread -----------------------------------------------------------------


def execute(kernel: KernelServices, request: Request) -> Content:
    content = request.content
    code = _field(content, "code", str)
    silent = bool(content.get("silent", False))
    store_history = bool(content.get("store_history", not silent)) and not silent
    user_expressions = _field(content, "user_expressions", dict, {}) or {}
    allow_stdin = bool(content.get("allow_stdin", True))
    stop_on_error = bool(content.get("stop_on_error", True))

    if store_history:
        kernel.execution_count += 1
    count = kernel.execution_count
    if not silent:
        request.publish("execute_input", {"code": code, "execution_count": count})
    if store_history:
        request.history_change = kernel.history.append(count, code)
    # Shown in tracebacks; cells that are not counted get a unique name so
    # linecache never serves another cell's source.
    filename = f"<In [{count}]>" if store_history else f"<In [-] {request.message.msg_id[:8]}>"
    if kernel.debugger is not None:  # while debugging: the name the frontend set its breakpoints on
        filename = kernel.debugger.cell_file(code) or filename

    def ask_input(prompt: str, password: bool) -> str:
        parent = request.message
        msg_id = kernel.outbox.send(
            "stdin", "input_request", {"prompt": prompt, "password": password}, parent.header, parent.idents
        )
        kernel.outbox.flush_soon()  # the user is waiting for this prompt
        return msg_id

    with kernel.comms.hooks():  # a cell may make widgets: comm.create_comm is this kernel's meanwhile
        result, expressions = kernel.cells.run(
            code,
            count=count,
            filename=filename,
            namespace=kernel.namespace,
            parent=request.message.header,
            publish=request.publish,
            ask_input=ask_input,
            allow_stdin=allow_stdin,
            user_expressions=user_expressions,
            history_session=kernel.history.session_if_ready if store_history else None,
            rewrite=_rewrite,
            kernel=kernel,
        )

    if result.exit_requested:
        return {
            "status": "ok",
            "execution_count": count,
            "user_expressions": expressions,
            "payload": [{"source": "ask_exit", "keepkernel": True}],
        }
    if result.error is not None:
        request.publish("error", result.error)
        if stop_on_error:
            # Abort what was queued when the error happened, not what a
            # client sends after seeing the error reply.
            queued = kernel.take_queued(lambda _c, m: m.msg_type == "execute_request")
            request.afterwards.append(lambda: _abort(kernel, queued))
        return {"status": "error", "execution_count": count, **result.error}
    if result.data is not None and not silent:
        request.publish(
            "execute_result", {"execution_count": count, "data": result.data, "metadata": result.metadata or {}}
        )
        if store_history:
            request.history_change = kernel.history.set_output(count, result.data.get("text/plain", ""))
    return {"status": "ok", "execution_count": count, "user_expressions": expressions, "payload": result.payload}


def _rewrite(source: str) -> str:
    """Python for a cell that may use magics, ``obj?`` or ``!cmd``; the
    magics module loads on first use."""
    if "%" not in source and "?" not in source and "!" not in source:
        return source
    from ._syntax import transform

    return transform(source)


def _abort(kernel: KernelServices, requests: list[tuple[str, Message]]) -> None:
    for channel, message in requests:
        aborted = Request(kernel, channel, message)
        aborted.publish("status", {"execution_state": "busy"})
        aborted.reply({"status": "aborted", "execution_count": kernel.execution_count})
        aborted.publish("status", {"execution_state": "idle"})


# _introspect (inspect, tokenize, codeop, pkgutil) is imported on first use:
# a kernel nobody completes in does not pay for it at start-up.


def complete_(kernel: KernelServices, request: Request) -> Content:
    from ._introspect import complete

    code = _field(request.content, "code", str)
    cursor_pos = _field(request.content, "cursor_pos", int, len(code))
    return complete(code, max(0, min(cursor_pos, len(code))), kernel.namespace, kernel.magics)


def inspect_(kernel: KernelServices, request: Request) -> Content:
    from ._introspect import inspect_object

    code = _field(request.content, "code", str)
    cursor_pos = _field(request.content, "cursor_pos", int, len(code))
    detail = _field(request.content, "detail_level", int, 0)
    return inspect_object(code, max(0, min(cursor_pos, len(code))), detail, kernel.namespace, kernel.magics)


def is_complete_(kernel: KernelServices, request: Request) -> Content:
    from ._introspect import is_complete

    return is_complete(_field(request.content, "code", str))


def history(kernel: KernelServices, request: Request) -> Content:
    return {"status": "ok", "history": kernel.history.query(request.content)}


def comm_info(kernel: KernelServices, request: Request) -> Content:
    target = _field(request.content, "target_name", str, "") or None
    return {"status": "ok", "comms": kernel.comms.info(target)}


def _comm_message(request: Request) -> dict[str, Any]:
    """A comm message as comm targets and callbacks take it (ipykernel's dict shape)."""
    message = request.message
    _field(message.content, "comm_id", str)
    return {
        "header": message.header,
        "msg_id": message.msg_id,
        "msg_type": message.msg_type,
        "parent_header": message.parent_header,
        "metadata": message.metadata,
        "content": message.content,
        "buffers": message.buffers,
    }


def comm_open(kernel: KernelServices, request: Request) -> None:
    kernel.comms.on_open(_comm_message(request))  # no target: the spec's answer is comm_close
    return None


def comm_msg(kernel: KernelServices, request: Request) -> None:
    kernel.comms.on_msg(_comm_message(request))
    return None


def comm_close(kernel: KernelServices, request: Request) -> None:
    kernel.comms.on_close(_comm_message(request))
    return None


def debug(kernel: KernelServices, request: Request) -> None:
    """The Jupyter debug protocol (``_debugger``): answered when its
    answer is ready, from the debugger's thread or the host's."""
    if kernel.debugger is None:  # the first debug request: until now nothing of the debugger was loaded
        from ._debugger import Debugger

        kernel.debugger = Debugger(kernel)
    request.deferred = True
    kernel.debugger.handle(request)
    return None


SOCKET_THREAD: dict[str, Handler] = {
    "kernel_info_request": kernel_info,
    "interrupt_request": interrupt,
    "shutdown_request": shutdown,
    "debug_request": debug,
}

HOST_THREAD: dict[str, Handler] = {
    "execute_request": execute,
    "complete_request": complete_,
    "inspect_request": inspect_,
    "is_complete_request": is_complete_,
    "history_request": history,
    "comm_info_request": comm_info,
    "comm_open": comm_open,
    "comm_msg": comm_msg,
    "comm_close": comm_close,
}
