"""Adapter for Qt applications (PySide6 or PyQt6, whichever the host loaded).

Kernel work reaches the GUI thread as a queued signal: ``call_soon`` (on the
socket thread) appends the callback and emits ``wake``; Qt posts that to the
event queue of the thread the waker lives in (the application's thread), and
the slot runs the callbacks there.  Queued events wait until the event loop
runs, so this works whether ``start_kernel`` is called before or after
``app.exec()``; zembed never calls ``exec()`` and never creates an
application.  One signal per batch: ``call_soon`` emits only when the queue
was empty.
"""

from __future__ import annotations

import logging
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
        self.binding = core.__name__.split(".")[0]
        self._callbacks: deque[Callable[[], None]] = deque()
        self._lock = threading.Lock()
        self._closed = False
        signal = core.Signal if hasattr(core, "Signal") else core.pyqtSignal

        class Waker(core.QObject):  # type: ignore[misc, name-defined]
            wake = signal()

        self._waker = Waker()
        if self._waker.thread() is not app.thread():
            self._waker.moveToThread(app.thread())  # started from another thread: run on the GUI's
        self._waker.wake.connect(self._run, core.Qt.ConnectionType.QueuedConnection)

    def call_soon(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if self._closed:
                return
            self._callbacks.append(callback)
            first = len(self._callbacks) == 1
        if first:
            try:
                self._waker.wake.emit()
            except RuntimeError:  # the host deleted the Qt objects at exit
                log.debug("zembed: Qt waker is gone; dropping kernel work")

    def _run(self) -> None:
        with self._lock:
            callbacks, self._callbacks = self._callbacks, deque()
        for callback in callbacks:
            callback()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._callbacks.clear()
        try:
            self._waker.wake.disconnect(self._run)
        except (RuntimeError, TypeError):  # already gone with the application
            pass
