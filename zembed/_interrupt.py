"""Interrupting a running cell without signals.

``interrupt_request`` arrives on the control thread while the host thread
runs user code.  We raise ``KeyboardInterrupt`` in that thread with
``PyThreadState_SetAsyncExc``, which takes effect at the next bytecode.  A
thread blocked in ``time.sleep`` runs no bytecode, so while a cell runs
``time.sleep`` is replaced (and then restored) by a version that waits on a
condition the interrupt wakes.  Other blocking C calls finish first.

The exception is only ever aimed at the cell: ``armed()`` opens the window
right before user code and closes it, clearing any exception not yet
delivered, before control returns to kernel or host code.  No signal is
sent and no signal handler is touched.
"""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, SupportsIndex

_set_async_exc: Callable[[int, Any], int] | None = None


def _raise_in(thread_id: int, exc_type: type[BaseException]) -> None:
    """``PyThreadState_SetAsyncExc``.  ctypes loads at the first interrupt:
    a host that is never interrupted does not carry its 0.4 MB."""
    global _set_async_exc
    if _set_async_exc is None:
        import ctypes

        function = ctypes.pythonapi.PyThreadState_SetAsyncExc
        function.argtypes = [ctypes.c_ulong, ctypes.py_object]
        function.restype = ctypes.c_int
        _set_async_exc = function
    _set_async_exc(thread_id, exc_type)


class _Spent(BaseException):
    """Replaces an interrupt that arrived too late, so it can be delivered
    harmlessly inside the kernel (see ``Interrupter._disarm``)."""


class Interrupter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._target: int | None = None
        self._sent = False  # an exception was aimed at the current window
        # One raw lock per sleeping call, held while it sleeps; the interrupt
        # releases them.  Raw locks wait in C, with no Python-level cleanup
        # for the async exception to land in.
        self._sleepers: set[_thread.LockType] = set()
        self._pending = False  # interrupt the next cell as it starts (see interrupt_next)

    @property
    def running(self) -> bool:
        return self._target is not None

    def interrupt(self) -> bool:
        """Raise KeyboardInterrupt in the running cell; False if none runs."""
        with self._lock:
            if self._target is None:
                return False
            _raise_in(self._target, KeyboardInterrupt)
            self._sent = True
            for waiter in list(self._sleepers):
                try:
                    waiter.release()
                except RuntimeError:  # already woken
                    pass
            return True

    def interrupt_next(self) -> None:
        """An interrupt came while a cell was queued but not yet started (a
        Ctrl-C right after Enter): the next cell raises KeyboardInterrupt as
        it starts, instead of running."""
        with self._lock:
            self._pending = True

    def _disarm(self) -> None:
        with self._lock:
            target, self._target = self._target, None
            sent, self._sent = self._sent, False
        if not sent or target is None:
            return
        # An interrupt was aimed at this window and may not have landed yet.
        # Clearing it with SetAsyncExc(id, NULL) would leave CPython's eval
        # breaker signalled for good (it signals even when clearing): the
        # host would run the slow path at every check from then on, and
        # spin under a profiler.  Instead, swap in a private exception and
        # let the interpreter deliver it here, which resets the breaker.
        try:
            _raise_in(target, _Spent)
            for _ in range(10_000_000):  # delivered at the first eval-breaker check
                pass
        except _Spent:
            return

    @contextmanager
    def armed(self) -> Iterator[None]:
        """Run the body as an interruptible cell on the current thread."""
        real_sleep = time.sleep
        me = threading.get_ident()

        def sleep(seconds: float | SupportsIndex) -> None:
            if threading.get_ident() != me or self._target is None:
                return real_sleep(seconds)
            seconds = float(seconds)  # type: ignore[arg-type]  # as time.sleep accepts
            if seconds < 0:
                raise ValueError("sleep length must be non-negative")
            waiter = _thread.allocate_lock()
            waiter.acquire()
            self._sleepers.add(waiter)
            try:
                # Returns early only when interrupt() released it; the pending
                # async exception then fires at the next bytecode.
                waiter.acquire(timeout=min(seconds, threading.TIMEOUT_MAX))
            finally:
                self._sleepers.discard(waiter)

        sleep.__doc__ = real_sleep.__doc__
        with self._lock:
            self._target = me
            pending, self._pending = self._pending, False
        time.sleep = sleep
        try:
            if pending:
                raise KeyboardInterrupt
            yield
        finally:
            # An exception delivered while we disarm must not escape into
            # kernel code: retry until the window is closed and cleared.
            while True:
                try:
                    self._disarm()
                    time.sleep = real_sleep
                    break
                except KeyboardInterrupt:
                    continue
