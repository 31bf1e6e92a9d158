"""bench_host.py with zembed's request path stamped: each stage's start and
end, on the thread it runs on, in ``time.monotonic_ns()`` (one clock for
every process on the machine, so a client's stamps line up with these).
Run by ``trace_execute.py``; a cell reads ``__import__('__main__').STAMPS``.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
import time
from typing import Any

import bench_host
import zmq

from zembed import _handlers, _host_queue, _kernel_history, _outbox, _protocol, _sockets
from zembed._cell import Cells
from zembed.loops import asyncio_loop

STAMPS: list[tuple[int, str, str, str]] = []  # (ns, stage, "begin"/"end", thread name)


def stamped(owner: Any, name: str, stage: str, detail: Any = None) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        label = stage if detail is None else f"{stage}:{detail(*args, **kwargs)}"
        thread = threading.current_thread().name
        STAMPS.append((time.monotonic_ns(), label, "begin", thread))
        try:
            return original(*args, **kwargs)
        finally:
            STAMPS.append((time.monotonic_ns(), label, "end", thread))

    setattr(owner, name, wrapper)


stamped(_sockets.SocketThread, "_receive", "receive")
stamped(_protocol.Session, "parse", "parse")
stamped(asyncio_loop.AsyncioLoop, "call_soon", "call_soon")
stamped(_host_queue.HostQueue, "run_pending", "run_pending")
stamped(_handlers, "handle", "handle")
stamped(Cells, "run", "cell")
stamped(_outbox.Outbox, "send", "send", lambda self, channel, msg_type, *a, **k: msg_type)
stamped(_sockets.SocketThread, "_wake", "wake")
stamped(_sockets.SocketThread, "_flush_outbox", "flush_outbox")
stamped(_sockets.SocketThread, "_barrier_reached", "history_commit")
stamped(zmq.Socket, "send_multipart", "zmq_send")
stamped(_kernel_history.History, "_commit", "sql_commit")

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "--kernel", "zembed"]
    asyncio.run(bench_host.main())
