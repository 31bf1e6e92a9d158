"""Capturing ``sys.stdout``/``sys.stderr`` while a cell runs, and only then.

``OutputBuffer`` collects text from the host thread and from threads the
cell started; the socket thread drains it every ``stream_flush_interval``
and once more before ``idle``, so output arrives as it is produced, batched
(one message per flush and stream, never one per line: iopub drops messages
beyond its high-water mark).

``captured_streams`` swaps the two stream objects in and restores exactly
the objects that were there before, even if they were ``None`` (windowed
hosts) or another library's wrappers.

Two paths (docs/internals.md, "Output capture"): ``write()`` tells the
host's threads from the cell's, in Python; when the host has no thread but
the cell's, stdout's ``write`` is a ``StringIO``'s own C method instead, so
a printing cell costs what printing to a ``StringIO`` costs.
"""

from __future__ import annotations

import io
import sys
import threading
from _thread import get_ident as _get_ident
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from ._dap import is_kernel_thread

Emit = Callable[[str, str], None]  # (stream name, text) -> queue a stream message


class OutputBuffer:
    """Text chunks for one cell, in write order: stdout's as ``str``,
    stderr's as ``("stderr", text)``.

    Writing takes no lock: ``list.append`` is one step under the GIL, and
    so is each step of taking (``len``, a slice, deleting that prefix), so
    a write landing while a flush takes is kept for the next one.  A
    print-heavy cell calls ``write`` twice per line; a lock there cost
    more than the rest of the capture.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # between flushers, and stderr against the stdout sink
        self._chunks: list[str | tuple[str, str]] = []
        self.append = self._chunks.append
        # The fast path's stdout (``fast_stdout``): writes go straight to a StringIO, in C
        self._sink: io.StringIO | None = None
        self._rebind: Callable[[Callable[[str], int]], None] = lambda write: None
        self._retired: tuple[io.StringIO, int] | None = None  # the sink before, and how much of it was taken

    def write(self, name: str, text: str) -> None:
        if self._sink is not None:  # stdout text written before this must come first
            with self._lock:
                self._cut()
                self.append(text if name == "stdout" else (name, text))
            return
        self.append(text if name == "stdout" else (name, text))

    def fast_stdout(self, rebind: Callable[[Callable[[str], int]], None]) -> Callable[[str], int]:
        """Take stdout's writes in a StringIO whose C ``write`` is the
        stream's own (``rebind`` gives the stream a fresh sink's at each
        flush): a print costs what printing to a StringIO costs."""
        self._sink = io.StringIO()
        self._rebind = rebind
        return self._sink.write

    def _cut(self) -> None:
        """Move what the stdout sink holds into the chunks (under the lock).

        ``print()`` finds and calls ``write`` without running bytecode in
        between, so after the rebinding every print goes to the new sink;
        only a Python-level ``sys.stdout.write`` paused between the two can
        still write to the old one, which is read again at the next cut."""
        retired, self._retired = self._retired, None
        if retired is not None:
            late = retired[0].getvalue()[retired[1] :]
            if late:
                self.append(late)
        sink = self._sink
        if sink is None or not sink.tell():
            return
        fresh = io.StringIO()
        self._sink = fresh
        self._rebind(fresh.write)
        text = sink.getvalue()
        self.append(text)
        self._retired = (sink, len(text))

    def flush(self, emit: Emit) -> None:
        """Hand everything written so far to ``emit``, merged per stream run.

        ``emit`` runs under the buffer's lock, so two flushers (the socket
        thread's timer and the host thread before a display) can never
        reorder output.
        """
        with self._lock:
            self._cut()
            chunks = self._chunks
            count = len(chunks)
            if not count:
                return
            taken = chunks[:count]
            del chunks[:count]
            run_name, parts = "", list[str]()
            for chunk in taken:
                name, text = ("stdout", chunk) if isinstance(chunk, str) else chunk
                if name != run_name:
                    if parts:
                        emit(run_name, "".join(parts))
                    run_name, parts = name, []
                parts.append(text)
            emit(run_name, "".join(parts))


class CapturedStream(io.TextIOBase):
    """A text stream that sends the cell's writes to an ``OutputBuffer``.

    Writes from the thread running the cell, or from threads that did not
    exist when the cell began (the cell started them), are captured.
    Writes from the host's other threads go to the stream that was there
    before, so a host's background logging is not broadcast.
    """

    def __init__(
        self, name: str, buffer: OutputBuffer, previous: TextIO | None, preexisting: set[threading.Thread]
    ) -> None:
        super().__init__()
        self.name = name
        self._buffer = buffer
        self._previous = previous
        self._preexisting = preexisting
        self._cell_ident = threading.get_ident()
        self._append = buffer.append
        self._plain = name == "stdout"  # stdout's chunks are plain strings: one append, no tuple

    def _captures(self) -> bool:
        return threading.get_ident() == self._cell_ident or threading.current_thread() not in self._preexisting

    def write(self, text: str) -> int:
        # The hot path of a printing cell (twice per print()): the thread
        # test first, by ident, before anything that looks up the thread.
        if text.__class__ is not str and not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if _get_ident() == self._cell_ident or threading.current_thread() not in self._preexisting:
            if self._plain:
                self._append(text)
            else:  # stderr: through the buffer, which puts stdout's fast-path text first
                self._buffer.write(self.name, text)
        elif self._previous is not None:
            self._previous.write(text)
        return len(text)

    def writelines(self, lines: object) -> None:
        for line in lines:  # type: ignore[attr-defined]
            self.write(line)

    def flush(self) -> None:
        if not self._captures() and self._previous is not None:
            self._previous.flush()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


@contextmanager
def captured_streams(buffer: OutputBuffer) -> Iterator[None]:
    saved_out, saved_err = sys.stdout, sys.stderr
    preexisting = set(threading.enumerate())
    stdout = CapturedStream("stdout", buffer, saved_out, preexisting)
    if all(thread is threading.current_thread() or is_kernel_thread(thread) for thread in preexisting):
        # No thread of the host's but this one: nothing to tell apart, so
        # stdout takes the fast path (a cell printing 100,000 lines took
        # 2.3 times a StringIO's time through write() in Python).
        def rebind(write: Callable[[str], int]) -> None:
            stdout.write = write  # type: ignore[method-assign, assignment]

        rebind(buffer.fast_stdout(rebind))
    sys.stdout = stdout
    sys.stderr = CapturedStream("stderr", buffer, saved_err, preexisting)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved_out, saved_err
