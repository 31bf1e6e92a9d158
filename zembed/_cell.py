"""One cell's run on the host's thread, and what is known about it meanwhile.

Owns the running-cell state (which request's cell runs, since when, its
captured output) and the run itself: what is swapped in while user code
runs and restored after it (stdout/stderr capture, ``display()``'s target,
``input()``/``getpass``, the interrupt window), what is noted for a crash
report before the code starts and after it ends, and how output streams
(the socket thread calls ``flush_output`` on its tick while a cell runs).

Other threads only read: ``executing``, ``running_cell()``,
``current_parent()``, and ``interrupt()`` from control.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from ._capture import OutputBuffer, captured_streams
from ._display import format_bundle, publishing
from ._execute import CellResult, evaluate_expressions, run_cell
from ._interrupt import Interrupter
from ._stdin import RequestInput, StdinBridge

Content = dict[str, Any]


class CrashNotes(Protocol):
    """Where a cell is noted before it runs (``_recovery.RunRecord``)."""

    def cell_started(self, count: int, msg_id: str, code: str, history_session: int | None) -> None: ...

    def cell_finished(self) -> None: ...


class Cells:
    """The host thread's cell slot: at most one cell runs at a time."""

    def __init__(self) -> None:
        self.interrupter = Interrupter()
        self.stdin = StdinBridge()
        self.notes: CrashNotes | None = None  # set when crash recovery is on
        # its output, its request's header, and where its output goes (the kernel's iopub, or a cluster's)
        self._active: tuple[OutputBuffer, Content, Callable[[str, Content], None]] | None = None
        self._started: float | None = None
        self._count = 0

    # -- any thread -----------------------------------------------------------

    @property
    def executing(self) -> bool:
        return self._started is not None

    @property
    def started(self) -> float | None:
        """``time.monotonic()`` when the running cell started, or None."""
        return self._started

    def current_parent(self) -> Content | None:
        """The header of the request whose cell is running, if any."""
        active = self._active
        return active[1] if active is not None else None

    def running_cell(self) -> Content | None:
        """Whose cell runs, which, for how long, and whether it waits for input."""
        active, started = self._active, self._started
        if active is None or started is None:
            return None
        parent = active[1]
        return {
            "msg_id": parent.get("msg_id"),
            "session": parent.get("session"),
            "username": parent.get("username"),
            "execution_count": self._count,
            "seconds": round(time.monotonic() - started, 3),
            "waiting_for_input": self.stdin.waiting,
        }

    def flush_output(self) -> None:
        """Publish what the running cell printed since the last flush, where
        its request's output goes (socket thread's tick)."""
        active = self._active
        if active is not None:
            buffer, _, publish = active
            buffer.flush(lambda name, text: publish("stream", {"name": name, "text": text}))

    def interrupt(self, queued: bool) -> bool:
        """KeyboardInterrupt in the running cell; or, when a cell was sent
        (``queued``) but has not started, in that cell as it starts."""
        interrupted = self.interrupter.interrupt()
        if not interrupted and (queued or self._started is not None):
            self.interrupter.interrupt_next()
            interrupted = True
        self.stdin.wake()
        return interrupted

    def close(self) -> None:
        """The kernel stops: a cell waiting for input gives up."""
        self.stdin.closed = True
        self.stdin.wake()

    # -- the host's thread ------------------------------------------------------

    def run(
        self,
        code: str,
        *,
        count: int,
        filename: str,
        namespace: dict[str, Any],
        parent: Content,
        publish: Callable[[str, Content], None],
        ask_input: RequestInput,
        allow_stdin: bool,
        user_expressions: Content,
        history_session: int | None,
        rewrite: Callable[[str], str],
        kernel: Any = None,
    ) -> tuple[CellResult, Content]:
        """Run one cell with everything swapped in; the result and the
        evaluated ``user_expressions``.  ``publish(msg_type, content)`` sends
        the cell's output (as output of its request); ``ask_input(prompt,
        password)`` sends an ``input_request`` and returns its msg_id.
        Never raises for what the code does."""
        if self.notes is not None:
            self.notes.cell_started(count, str(parent.get("msg_id", "")), code, history_session)
        buffer = OutputBuffer()
        display = CellDisplay(publish, buffer, kernel)

        def request_input(prompt: str, password: bool) -> str:
            display.flush()  # what was printed before the prompt is shown before it
            return ask_input(prompt, password)

        expressions: Content = {}
        try:
            with (
                self._running(buffer, parent, count, publish),
                captured_streams(buffer),
                publishing(display),
                self.stdin.patched(request_input, allow_stdin),
            ):
                result = run_cell(code, filename, namespace, self.interrupter.armed, format_bundle, rewrite)
                if user_expressions:
                    expressions = evaluate_expressions(user_expressions, namespace, format_bundle)
        finally:
            display.flush()
            if self.notes is not None:
                self.notes.cell_finished()
        result.payload = display.payload
        return result, expressions

    @contextmanager
    def _running(
        self, buffer: OutputBuffer, parent: Content, count: int, publish: Callable[[str, Content], None]
    ) -> Iterator[None]:
        """Mark the cell as running: its output is flushed on the socket
        thread's tick, and ``host_busy_seconds`` counts from now."""
        self._active, self._count = (buffer, parent, publish), count
        self._started = time.monotonic()
        try:
            yield
        finally:
            self._started = None
            self._active = None


class CellDisplay:
    """``display()`` target of a running cell: flushes printed text first,
    so output shows in the order it was made."""

    def __init__(self, publish: Callable[[str, Content], None], buffer: OutputBuffer, kernel: Any) -> None:
        self._publish, self._buffer = publish, buffer
        self.kernel = kernel  # magics find the kernel running the cell here
        self.payload: list[Content] = []  # for the execute_reply: what the frontend's pager shows (``obj?``)

    def page(self, text: str) -> None:
        """Show ``text`` in the frontend's pager (spec: the ``page`` payload)."""
        self.payload.append({"source": "page", "data": {"text/plain": text}, "start": 0})

    def flush(self) -> None:
        self._buffer.flush(lambda name, text: self._publish("stream", {"name": name, "text": text}))

    def publish(self, msg_type: str, content: Content) -> None:
        self.flush()
        self._publish(msg_type, content)
