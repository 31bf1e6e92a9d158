"""Adapter for Qt applications (PySide6 or PyQt6, whichever the host loaded).

A ``QSocketNotifier``, created in the application's thread, watches the
wake-up socket of a ``WakeupQueue`` and runs the queued kernel work there.
(Emitting a Qt signal from the socket thread was the first design: PySide6
6.12 drops a reference to ``True`` on every ``emit()`` from a non-Qt
thread, and the host died with "deallocating True" after about a thousand
requests.  A socket is binding-neutral and costs the same.)

Notifier events wait until the event loop runs, so this works whether
``start_kernel`` is called before or after ``app.exec()``; zembed never calls
``exec()`` and never creates an application.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .._errors import UsageError
from ._wakeup import WakeupQueue

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
        self._queue = WakeupQueue()
        self._notifier = core.QSocketNotifier(self._queue.fileno(), core.QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._on_readable)
        self._thread = threading.get_ident()  # Qt's thread: only it may disable the notifier

    def call_soon(self, callback: Callable[[], None]) -> None:
        self._queue.put(callback)

    def _on_readable(self, *args: object) -> None:
        self._queue.run()

    def close(self) -> None:
        on_qt_thread = threading.get_ident() == self._thread
        if on_qt_thread:
            try:
                self._notifier.setEnabled(False)
                self._notifier.activated.disconnect(self._on_readable)
            except (RuntimeError, TypeError):  # gone with the application
                pass
        # Elsewhere, Qt's objects cannot be touched: the notifier stays, finding nothing to run.
        self._queue.close(release=on_qt_thread)
