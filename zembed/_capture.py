"""Capturing ``sys.stdout``/``sys.stderr`` while a cell runs, and only then.

``OutputBuffer`` collects text from the host thread and from threads the
cell started; the socket thread drains it every ``stream_flush_interval``
and once more before ``idle``, so output arrives as it is produced, batched
(one message per flush and stream, never one per line: iopub drops messages
beyond its high-water mark).

``captured_streams`` swaps the two stream objects in and restores exactly
the objects that were there before, even if they were ``None`` (windowed
hosts) or another library's wrappers.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

Emit = Callable[[str, str], None]  # (stream name, text) -> queue a stream message


class OutputBuffer:
    """Thread-safe text chunks for one cell, in write order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chunks: list[tuple[str, str]] = []
        self.size = 0

    def write(self, name: str, text: str) -> None:
        with self._lock:
            self._chunks.append((name, text))
            self.size += len(text)

    def flush(self, emit: Emit) -> None:
        """Hand everything written so far to ``emit``, merged per stream run.

        ``emit`` runs under the buffer's lock, so two flushers (the socket
        thread's timer and the host thread before a display) can never
        reorder output.
        """
        with self._lock:
            if not self._chunks:
                return
            run_name, parts = self._chunks[0][0], list[str]()
            for name, text in self._chunks:
                if name != run_name:
                    emit(run_name, "".join(parts))
                    run_name, parts = name, []
                parts.append(text)
            emit(run_name, "".join(parts))
            self._chunks = []
            self.size = 0


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
        self._cell_thread = threading.current_thread()

    def _captures(self) -> bool:
        thread = threading.current_thread()
        return thread is self._cell_thread or thread not in self._preexisting

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self._captures():
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
    sys.stdout = CapturedStream("stdout", buffer, saved_out, preexisting)
    sys.stderr = CapturedStream("stderr", buffer, saved_err, preexisting)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved_out, saved_err
