"""The output capture's two paths, in process: the fast one (stdout's writes
go to a StringIO's C ``write`` when no thread of the host's but the cell's
exists) and the filtering one; order across streams, and nothing lost to a
flush racing a writer."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from typing import Any

import pytest

from zembed._capture import OutputBuffer, captured_streams

pytestmark = pytest.mark.timeout(60)


class FastStream:
    """What ``captured_streams`` makes of stdout on the fast path: an object whose ``write`` is rebound."""

    write: Any


def fast(buffer: OutputBuffer) -> FastStream:
    stream = FastStream()

    def rebind(write: Any) -> None:
        stream.write = write

    rebind(buffer.fast_stdout(rebind))
    return stream


def emitted(buffer: OutputBuffer) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    buffer.flush(lambda name, text: out.append((name, text)))
    return out


def test_stdout_on_the_fast_path_keeps_its_place_among_stderr_writes() -> None:
    buffer = OutputBuffer()
    stdout = fast(buffer)
    assert stdout.write("a\n") == 2  # a StringIO's write: it returns the length, as a stream's must
    buffer.write("stderr", "E\n")
    stdout.write("b\n")
    stdout.write("c\n")
    assert emitted(buffer) == [("stdout", "a\n"), ("stderr", "E\n"), ("stdout", "b\nc\n")]
    assert emitted(buffer) == []
    stdout.write("d\n")  # after a flush: the fresh sink's write
    assert emitted(buffer) == [("stdout", "d\n")]


def test_a_flush_racing_a_writer_loses_and_repeats_nothing() -> None:
    buffer = OutputBuffer()
    stdout = fast(buffer)
    lines = 200_000
    out: list[str] = []
    done = threading.Event()

    def writer() -> None:
        for i in range(lines):
            stdout.write(f"{i}\n")  # the attribute fetched each time, as sys.stdout.write(...) does
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not done.is_set():
        buffer.flush(lambda name, text: out.append(text))
    thread.join()
    buffer.flush(lambda name, text: out.append(text))
    buffer.flush(lambda name, text: out.append(text))  # a late write to a retired sink is read here
    assert "".join(out) == "".join(f"{i}\n" for i in range(lines))


def test_a_host_thread_that_exists_keeps_its_prints_and_the_filtering_path() -> None:
    before = io.StringIO()
    saved = sys.stdout
    go, printed = threading.Event(), threading.Event()

    def host_thread() -> None:
        go.wait(10)
        print("the host's own line")
        printed.set()

    thread = threading.Thread(target=host_thread, daemon=True)
    thread.start()
    buffer = OutputBuffer()
    sys.stdout = before
    try:
        with captured_streams(buffer):
            assert type(sys.stdout.write).__name__ == "method"  # zembed's write, which tells threads apart
            print("the cell's line")
            go.set()
            printed.wait(10)
    finally:
        sys.stdout = saved
    thread.join(10)
    assert emitted(buffer) == [("stdout", "the cell's line\n")]
    assert before.getvalue() == "the host's own line\n"


def test_the_fast_path_is_taken_when_the_host_has_no_other_thread() -> None:
    code = (
        "import sys\n"
        "from zembed._capture import OutputBuffer, captured_streams\n"
        "b = OutputBuffer()\n"
        "with captured_streams(b):\n"
        "    kind = type(sys.stdout.write).__name__\n"
        "    for i in range(3): print(i)\n"
        "    sys.stderr.write('e\\n')\n"
        "    print('end')\n"
        "out = []\n"
        "b.flush(lambda n, t: out.append((n, t)))\n"
        "print(kind, out)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "builtin_function_or_method [('stdout', '0\\n1\\n2\\n'), ('stderr', 'e\\n'), ('stdout', 'end\\n')]"
    )
