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
requests.  Adapters are deliberately tiny; see ``asyncio_loop.py`` and
``poll_loop.py``.
"""

from __future__ import annotations

import logging
import sys
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
    # Without asyncio imported no loop can be running: don't pay its import.
    asyncio_module = sys.modules.get("asyncio")
    if asyncio_module is None:
        return None
    try:
        return asyncio_module.get_running_loop()
    except RuntimeError:
        return None


def _asyncio_adapter(loop: asyncio.AbstractEventLoop) -> LoopAdapter:
    from .asyncio_loop import AsyncioLoop

    return AsyncioLoop(loop)


def _by_name(name: str) -> LoopAdapter:
    if name == "poll":
        return PollLoop()
    if name == "asyncio":
        running = _running_asyncio_loop()
        if running is None:
            raise UsageError(
                "loop='asyncio' needs an asyncio loop running on this thread; call start_kernel "
                "from inside the loop (a coroutine or callback), or pass the loop object: "
                "start_kernel(ns, loop=my_loop)"
            )
        return _asyncio_adapter(running)
    if name == "auto":
        running = _running_asyncio_loop()
        if running is not None:
            return _asyncio_adapter(running)
        log.warning(
            "zembed: no running event loop found on this thread; using loop='poll'. "
            "The host must call kernel.poll() regularly (from a timer or its frame loop)."
        )
        return PollLoop()
    raise UsageError(f"unknown loop {name!r}: use 'auto', 'asyncio', 'poll', a loop object or a callable")


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
    if callable(spec):
        return CallableLoop(spec)
    raise UsageError(f"loop={spec!r} is neither a loop name, an event loop, nor a callable")


__all__ = ["LoopAdapter", "PollLoop", "CallableLoop", "resolve_loop"]
