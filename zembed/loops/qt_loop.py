"""Adapter for Qt applications (PySide6 or PyQt6, whichever the host loaded).

The socket thread never calls Qt: ``call_soon`` appends the callback and
writes one byte to a socket pair; a ``QSocketNotifier`` on the other end,
created in the application's thread, fires there, drains the bytes and runs
the callbacks.  (Emitting a Qt signal from a non-Qt thread was the first
design: PySide6 6.12 drops a reference to ``True`` on every such
``emit()``, and the host dies with "deallocating True" after a few thousand
requests.  A socket is binding-neutral and costs the same.)

Notifier events wait until the event loop runs, so this works whether
``start_kernel`` is called before or after ``app.exec()``; zembed never calls
``exec()`` and never creates an application.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .._errors import UsageError

log = logging.getLogger("zembed")

BINDINGS = ("PySide6", "PyQt6")


def loaded_qt() -> ModuleType | None:
    """The QtCore module of the Qt binding the host imported, if any (the one
    with an application instance first)."""
    modules = [sys.modules[f"{name}.QtCore"] for name in BINDINGS if f"{name}.QtCore" in sys.modules]
    for core in modules:
        if core.QCoreApplication.instance() is not None:
            return core
    return modules[0] if modules else None


def application(core: ModuleType) -> Any:
    return core.QCoreApplication.instance()


class QtLoop:
    name = "qt"

    def __init__(self, core: ModuleType | None = None) -> None:
        core = core or loaded_qt()
        if core is None:
            raise UsageError("loop='qt' needs PySide6 or PyQt6 imported by the host")
        app = application(core)
        if app is None:
            raise UsageError(
                "loop='qt' needs the host's QApplication (or QCoreApplication) to exist: create it before "
                "start_kernel; zembed never creates one"
            )
        if core.QThread.currentThread() is not app.thread():
            raise UsageError("loop='qt': call start_kernel from the Qt application's thread (where app.exec() runs)")
        self.binding = core.__name__.split(".")[0]
        self._callbacks: deque[Callable[[], None]] = deque()
        self._lock = threading.Lock()
        self._closed = False
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._notifier = core.QSocketNotifier(self._reader.fileno(), core.QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._on_readable)
        self._thread = threading.get_ident()  # Qt's thread: only it may disable the notifier

    def call_soon(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if self._closed:
                return
            self._callbacks.append(callback)
            first = len(self._callbacks) == 1
        if first:
            try:
                self._writer.send(b"!")
            except BlockingIOError:  # full of wake-ups already
                pass
            except OSError:
                log.debug("zembed: Qt wake-up socket closed; dropping kernel work")

    def _on_readable(self, *args: object) -> None:
        try:
            while self._reader.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
        with self._lock:
            callbacks, self._callbacks = self._callbacks, deque()
        for callback in callbacks:
            callback()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._callbacks.clear()
        if threading.get_ident() != self._thread:
            return  # Qt objects belong to Qt's thread: the notifier stays, finding nothing to run
        try:
            self._notifier.setEnabled(False)
            self._notifier.activated.disconnect(self._on_readable)
        except (RuntimeError, TypeError):  # gone with the application, or another thread
            pass
        self._writer.close()
        self._reader.close()
