"""debugpy in this process, as zembed uses it: starting and stopping it on
the host's thread (``listen``, ``unlisten``), the DAP connection to it
(``Wire``), and what else may already trace the host (``other_debugger``).
Everything here touches debugpy's or pydevd's own objects; the session
(``_debug_session``) speaks to it only through these.
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import sys
import threading
from typing import Any

from ._dap import ANSWER_TIMEOUT, Dap

log = logging.getLogger("zembed")


class Wire:
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

    def wait(self, timeout: float) -> None:
        """Until something arrives or ``timeout`` seconds pass."""
        select.select([self.sock], [], [], max(0.0, timeout))

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


def other_debugger() -> str | None:
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


def listen() -> tuple[str, int]:
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


def no_delay() -> None:
    """pydevd writes a message's header and body in two sends: with Nagle's
    algorithm against this side's delayed ACK each answer took 40 ms."""
    try:
        import pydevd

        writer = pydevd.get_global_debugger().writer
        writer.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except Exception:  # another pydevd: slower answers, nothing worse
        log.debug("zembed: could not set TCP_NODELAY on pydevd's socket", exc_info=True)


def unlisten() -> None:
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


def trace_this_thread() -> None:
    """On the host's thread, after an interrupted cell: the interrupt left
    pydevd's trace function by an exception, which unsets it."""
    if sys.gettrace() is None:
        import debugpy

        debugpy.debug_this_thread()
