"""Benchmark host: a 60 Hz asyncio frame loop with zembed, ipykernel or no
kernel inside (``--kernel zembed|ipykernel|none``), or with only what
zembed's dependencies take (``--kernel deps``: pyzmq with a context and the
five sockets bound, traitlets, orjson, hmac, an SQLite database), the floor
of its memory; that host serves nothing and prints its ``added`` counts.

Prints one JSON line: {"connection_file", "pid", "t0"} where t0 is the wall
time before the kernel's import, so a client can time import + start +
first kernel_info_reply.  The namespace has ``host`` with lateness samples
(how late each frame woke, in seconds) and the resource counts taken before
the import.
"""

from __future__ import annotations

import time

T0 = time.time()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import psutil  # noqa: E402


class Host:
    def __init__(self) -> None:
        process = psutil.Process()
        memory = process.memory_info()
        self.rss_before = memory.rss
        self.private_before = memory.rss - memory.shared
        self.threads_before = process.num_threads()
        self.lateness: list[float] = []
        self.work_times: list[float] = []  # seconds of the host's own work, per frame
        self.quit = False
        self.per_frame: list = []  # the host's own code, run each frame (bench_widgets pushes widget updates here)

    def mark(self) -> int:
        return len(self.lateness)

    def work_since(self, mark: int) -> list[float]:
        return self.work_times[mark:]

    def lateness_since(self, mark: int) -> list[float]:
        return self.lateness[mark:]

    def added(self) -> dict[str, int]:
        process = psutil.Process()
        memory = process.memory_info()
        return {
            "rss": memory.rss - self.rss_before,
            # not file-backed (heap, stacks): what the kernel takes that no other process shares
            "private": memory.rss - memory.shared - self.private_before,
            "threads": process.num_threads() - self.threads_before,
        }


def dependencies_alone() -> list:
    """What zembed's dependencies take with none of zembed: its imports, a
    ZeroMQ context with a kernel's five sockets bound (libzmq's I/O thread
    starts), and an SQLite database in WAL mode with a table written."""
    import hashlib
    import hmac
    import sqlite3

    import orjson
    import traitlets
    import zmq

    context = zmq.Context()
    sockets = [context.socket(kind) for kind in (zmq.ROUTER, zmq.ROUTER, zmq.ROUTER, zmq.XPUB, zmq.ROUTER)]
    for sock in sockets:
        sock.bind_to_random_port("tcp://127.0.0.1")
    database = sqlite3.connect(os.path.join(tempfile.mkdtemp(), "history.sqlite"), check_same_thread=False)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("CREATE TABLE history (session INTEGER, line INTEGER, source TEXT, output TEXT)")
    database.execute("INSERT INTO history VALUES (1, 1, '1', '1')")
    database.commit()
    signer = hmac.new(os.urandom(32), orjson.dumps({"traitlets": traitlets.__version__}), hashlib.sha256)
    return [context, sockets, database, signer.hexdigest()]


def physics(x: float) -> float:
    return x * 0.999 + 0.001


def step(iterations: int) -> float:
    """The host's own per-frame work: plain Python calls, as a simulation step."""
    value = 0.0
    for _ in range(iterations):
        value = physics(value)
    return value


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kernel", choices=["zembed", "ipykernel", "none", "deps"], required=True)
    parser.add_argument("--fps", type=float, default=60.0)
    parser.add_argument("--work", type=int, default=0, help="iterations of Python work per frame")
    parser.add_argument(
        "--run-for", type=float, default=0.0, help="stop after this many seconds and print the lateness samples as JSON"
    )
    args = parser.parse_args()
    host = Host()
    namespace = {"host": host}
    connection_file = ""
    if args.kernel == "zembed":
        import zembed

        kernel = zembed.start_kernel(namespace, name="bench")
        connection_file = str(kernel.connection_file)
    elif args.kernel == "ipykernel":
        from ipykernel.kernelapp import IPKernelApp

        connection_file = os.path.join(tempfile.mkdtemp(), f"kernel-ipykernel-bench-{os.getpid()}.json")
        app = IPKernelApp.instance(connection_file=connection_file, quiet=True)
        app.initialize([])
        # As IPython.embed_kernel does: the namespace is a module's, so functions a
        # cell defines see it as their globals (a widget's observer, say).
        import types

        module = types.ModuleType("__main__")
        module.__dict__.update(namespace)
        app.kernel.user_module = module
        app.kernel.user_ns = module.__dict__
        app.kernel.start()  # registers with the running loop; the host keeps its own loop
    info: dict = {"connection_file": connection_file, "pid": os.getpid(), "t0": T0}
    if args.kernel == "deps":
        kept = dependencies_alone()  # noqa: F841 - held until the host ends
        info["added"] = host.added()
    # os.write: ipykernel replaces sys.stdout with a stream that goes to iopub.
    os.write(1, (json.dumps(info) + "\n").encode())
    period = 1.0 / args.fps
    loop = asyncio.get_running_loop()
    next_frame = loop.time() + period
    stop_at = loop.time() + args.run_for if args.run_for else float("inf")
    while not host.quit and loop.time() < stop_at:
        delay = next_frame - loop.time()
        await asyncio.sleep(max(0.0, delay))
        now = loop.time()
        host.lateness.append(now - next_frame)
        started = time.perf_counter()
        step(args.work)
        for callback in host.per_frame:
            callback()
        host.work_times.append(time.perf_counter() - started)
        next_frame += period
        if now > next_frame:  # a dropped frame: schedule from now
            next_frame = now + period
    if args.run_for:
        os.write(1, (json.dumps({"lateness": host.lateness}) + "\n").encode())


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
