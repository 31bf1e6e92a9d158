"""Loop adapters: how the kernel gets work onto the host's thread.

The contract (the only thing the kernel asks of a host loop)
------------------------------------------------------------
An adapter is an object with:

``name: str``
    Shown in logs and in ``kernel_info`` (``"asyncio"``, ``"poll"``, ...).
``call_soon(callback) -> None``
    Thread-safe.  Arrange for ``callback()`` to run on the host's loop
    thread soon, then return at once.  Called from the kernel's socket
    thread.  It must not run the callback itself in the calling thread,
    and must not raise once the adapter is open (log instead).
``close() -> None``
    Called once from ``Kernel.stop()``; release whatever the adapter holds.
    Callbacks handed over after ``close()`` may be dropped.

Sockets never touch the adapter: the kernel's own threads own them, so an
adapter needs no "watch this fd".  The kernel coalesces its wake-ups (one
outstanding callback at a time) and bounds the work per callback
(``poll_budget``), so a host's frame is never taken over by a queue of
requests.  Adapters are deliberately tiny: ``asyncio_loop.py``,
``qt_loop.py``, ``tk_loop.py``, ``poll_loop.py``, ``callable_loop.py``.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .._errors import UsageError
from .callable_loop import CallableLoop
from .poll_loop import PollLoop

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("zembed")

Callback = Callable[[], None]


class LoopAdapter(Protocol):
    name: str

    def call_soon(self, callback: Callback) -> None: ...

    def close(self) -> None: ...


def _running_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    asyncio_module = sys.modules.get("asyncio")  # not imported: no loop can run
    if asyncio_module is None:
        return None
    try:
        return asyncio_module.get_running_loop()
    except RuntimeError:
        return None


def _current_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop of this thread: the running one, else the one set
    as current and not closed (the host calls ``run_forever()`` or
    tornado's ``IOLoop.current().start()`` right after ``start_kernel``).

    Never creates a loop: ``asyncio.get_event_loop()`` would make one (and
    set it for the thread) on Python < 3.14 when none is set, so the
    policy's thread-local slot is read instead.
    """
    # Without asyncio imported no loop can exist: don't pay its import.
    asyncio_module = sys.modules.get("asyncio")
    if asyncio_module is None:
        return None
    try:
        return asyncio_module.get_running_loop()
    except RuntimeError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the policy API is deprecated in 3.14
        policy = asyncio_module.get_event_loop_policy()
    local = getattr(policy, "_local", None)
    loop = getattr(local, "_loop", None)
    if isinstance(loop, asyncio_module.AbstractEventLoop) and not loop.is_closed():
        return loop
    return None


def _asyncio_adapter(loop: asyncio.AbstractEventLoop) -> LoopAdapter:
    from .asyncio_loop import AsyncioLoop

    return AsyncioLoop(loop)


def _qt_adapter(core: Any = None) -> LoopAdapter:
    from .qt_loop import QtLoop

    return QtLoop(core)


def _tk_adapter(root: Any = None) -> LoopAdapter:
    from .tk_loop import TkLoop

    return TkLoop(root)


def _auto() -> LoopAdapter:
    """What runs or exists on the calling thread: a running asyncio loop, a
    Qt application, a Tk root, an asyncio loop set as current but not
    running yet (tornado's ``IOLoop.current()`` sets one); else poll.  A
    toolkit comes before a loop that is not running: libraries (jupyter_core
    among them) leave a current loop behind that nobody will run."""
    running = _running_asyncio_loop()
    if running is not None:
        return _asyncio_adapter(running)
    if any(f"{binding}.QtCore" in sys.modules for binding in ("PySide6", "PyQt6")):
        from .qt_loop import application, loaded_qt

        core = loaded_qt()
        if core is not None and application(core) is not None:
            return _qt_adapter(core)
    if "tkinter" in sys.modules:
        from .tk_loop import default_root

        if default_root() is not None:
            return _tk_adapter()
    current = _current_asyncio_loop()
    if current is not None:
        return _asyncio_adapter(current)
    log.warning(
        "zembed: no asyncio loop, Qt application or Tk root found on this thread; using loop='poll'. "
        "The host must call kernel.poll() regularly (from a timer or its frame loop), or pass loop=..."
    )
    return PollLoop()


def _by_name(name: str) -> LoopAdapter:
    if name == "poll":
        return PollLoop()
    if name == "qt":
        return _qt_adapter()
    if name == "tk":
        return _tk_adapter()
    if name == "asyncio":
        current = _current_asyncio_loop()
        if current is None:
            raise UsageError(
                "loop='asyncio' needs an asyncio loop on this thread, running or set as current "
                "(asyncio.set_event_loop); call start_kernel from inside the loop (a coroutine or "
                "callback), or pass the loop object: start_kernel(ns, loop=my_loop)"
            )
        return _asyncio_adapter(current)
    if name == "auto":
        adapter = _auto()
        log.info("zembed: loop='auto' chose %r", adapter.name)
        return adapter
    raise UsageError(f"unknown loop {name!r}: use 'auto', 'asyncio', 'qt', 'tk', 'poll', a loop object or a callable")


def resolve_loop(spec: Any) -> LoopAdapter:
    """Turn ``start_kernel``'s ``loop=`` argument into an adapter."""
    if isinstance(spec, str):
        return _by_name(spec)
    asyncio_module = sys.modules.get("asyncio")  # a loop object implies asyncio is imported
    if asyncio_module is not None:
        if isinstance(spec, asyncio_module.AbstractEventLoop):
            return _asyncio_adapter(spec)
        inner = getattr(spec, "asyncio_loop", None)  # a tornado IOLoop runs on asyncio
        if isinstance(inner, asyncio_module.AbstractEventLoop):
            return _asyncio_adapter(inner)
    for binding in ("PySide6", "PyQt6"):  # a QApplication object
        core = sys.modules.get(f"{binding}.QtCore")
        if core is not None and isinstance(spec, core.QCoreApplication):
            return _qt_adapter(core)
    tkinter = sys.modules.get("tkinter")
    if tkinter is not None and isinstance(spec, tkinter.Misc):  # a Tk root (or any widget of it)
        return _tk_adapter(spec._root())
    if callable(spec):
        return CallableLoop(spec)
    raise UsageError(f"loop={spec!r} is neither a loop name, an event loop, nor a callable")


__all__ = ["LoopAdapter", "PollLoop", "CallableLoop", "resolve_loop"]
