"""bench_host.py with zembed's request path stamped: each stage's start and
end, on the thread it runs on, in ``time.monotonic_ns()`` (one clock for
every process on the machine, so a client's stamps line up with these).
Run by ``trace_execute.py``; a cell reads ``__import__('__main__').STAMPS``.
"""

from __future__ import annotations

import asyncio
import sys

import bench_host
from stamps import STAMPS, stamped  # noqa: F401 - a cell reads __main__.STAMPS

from zembed import _cell, _handlers, _host_queue, _outbox, _protocol, _sockets
from zembed._cell import Cells
from zembed.loops import asyncio_loop

stamped(_sockets.SocketThread, "_receive", "receive")
stamped(_protocol.Session, "parse", "parse")
stamped(asyncio_loop.AsyncioLoop, "call_soon", "call_soon")
stamped(_host_queue.HostQueue, "run_pending", "run_pending")
stamped(_handlers, "handle", "handle")
stamped(Cells, "run", "cell")
stamped(_cell, "format_bundle", "format")
stamped(_outbox.Outbox, "send", "send", lambda self, channel, msg_type, *a, **k: msg_type)
stamped(_sockets.SocketThread, "flush", "flush")
stamped(_sockets, "send_frames", "zmq_send")

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "--kernel", "zembed"]
    asyncio.run(bench_host.main())
