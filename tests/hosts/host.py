"""A real host application for the tests: a frame loop with zembed inside.

    python host.py --loop asyncio|poll|callable|tornado|qt|tk|asyncio-forever|tornado-start
                   [--name NAME] [--fps N]
                   [--stdout-none] [--exit-on-shutdown] [--start-in-loop] [--auto]

qt and tk: a Qt (QCoreApplication) or Tk host whose frames come from the
toolkit's own timer; the kernel starts before exec()/mainloop() (default) or
from inside the running loop (--start-in-loop); --auto passes loop="auto".

Prints one JSON line {"connection_file": ..., "pid": ...} on stdout once the
kernel serves, then runs its loop until a cell sets ``host.quit = True``,
or a client shuts the kernel down with --exit-on-shutdown, or 300 s pass.

The namespace holds ``host``, a small object the tests poke at: its frame
counter, the thread it runs on, a log of KeyboardInterrupts that reached
*host* code (must stay empty), and the signal handlers seen at start.
"""

from __future__ import annotations

import argparse
import asyncio
import builtins
import getpass
import json
import os
import queue
import signal
import sys
import threading
import time

import zembed

ORIGINAL_INPUT, ORIGINAL_GETPASS = builtins.input, getpass.getpass


class Host:
    def __init__(self) -> None:
        self.frames = 0
        self.thread_id = threading.get_ident()
        self.interrupts_in_host_code = 0
        self.quit = False
        self.fail: str | None = None  # a cell sets it: the next frame raises, which ends the host's loop
        self.shutdown_calls: list[bool] = []
        self.signals_at_start: dict[int, object] = {}
        self.printed = 0
        self.work = 0
        self.per_frame: list = []  # the host's own code, run every frame (a cell may add to it)
        self.sleep_was_builtin_between_cells = True
        self.input_was_builtin_between_cells = True
        self.streams = (sys.stdout, sys.stderr)
        self.stream_sets: set[tuple[int, int]] = set()

    @property
    def streams_seen_between_cells(self) -> int:
        """How many distinct stream pairs host code saw; 1 = always its own."""
        return len(self.stream_sets | {(id(self.streams[0]), id(self.streams[1]))})

    @staticmethod
    def signal_handlers() -> dict[int, object]:
        handlers = {}
        for sig in signal.valid_signals():
            try:
                handlers[int(sig)] = signal.getsignal(sig)
            except (ValueError, OSError):
                pass
        return handlers

    def before_kernel(self) -> None:
        # Taken right before start_kernel: asyncio.run() installs its own
        # SIGINT handler, which is the host's business, not zembed's.
        self.signals_at_start = self.signal_handlers()

    def signals_unchanged(self) -> bool:
        return self.signal_handlers() == self.signals_at_start

    def simulate(self) -> int:
        """The host's own per-frame work (--work N iterations)."""
        return sum(i * i for i in range(self.work))

    def frame(self) -> None:
        if self.fail:
            raise RuntimeError(self.fail)
        try:
            self.frames += 1
            if self.work:
                self.simulate()
            for step in list(self.per_frame):
                step()
            self.stream_sets.add((id(sys.stdout), id(sys.stderr)))
            if builtins.input is not ORIGINAL_INPUT or getpass.getpass is not ORIGINAL_GETPASS:
                self.input_was_builtin_between_cells = False
            if type(time.sleep).__name__ != "builtin_function_or_method":
                self.sleep_was_builtin_between_cells = False
            if self.frames % 30 == 0:
                self.printed += 1
                if sys.stdout is not None:
                    print(f"host-own-output {self.printed}", flush=True)
        except KeyboardInterrupt:
            self.interrupts_in_host_code += 1


def register_host_magics(kernel: zembed.Kernel, host: Host) -> None:
    """What a host adds: a line magic and a cell magic of its own."""

    def frames(line: str) -> int:
        """%frames: how many frames the host has drawn."""
        return host.frames

    def reverse(line: str, cell: str) -> str:
        """%%reverse: the cell's lines, last first."""
        return "\n".join(reversed(cell.strip().splitlines()))

    kernel.register_magic("frames", frames)
    kernel.register_magic("reverse", reverse, cell=True)


def announce(kernel: zembed.Kernel) -> None:
    line = json.dumps({"connection_file": str(kernel.connection_file), "pid": os.getpid()})
    os.write(1, (line + "\n").encode())  # works with sys.stdout None too


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loop", default="asyncio")
    parser.add_argument("--name", default="testhost")
    parser.add_argument("--fps", type=float, default=60.0)
    parser.add_argument("--stdout-none", action="store_true")
    parser.add_argument("--exit-on-shutdown", action="store_true")
    parser.add_argument("--work", type=int, default=0, help="iterations of Python work per frame")
    parser.add_argument("--start-in-loop", action="store_true", help="qt/tk: start the kernel from the running loop")
    parser.add_argument("--auto", action="store_true", help="qt/tk: loop='auto' instead of naming the toolkit")
    args = parser.parse_args()
    if args.stdout_none:
        sys.stdout = None  # type: ignore[assignment]  # a windowed host
        sys.stderr = None  # type: ignore[assignment]
    host = Host()  # after the --stdout-none switch: it records the host's own streams
    host.work = args.work
    namespace = {"host": host}
    period = 1.0 / args.fps
    deadline = time.monotonic() + 300

    def on_shutdown(kernel: zembed.Kernel, restart: bool) -> None:
        host.shutdown_calls.append(restart)
        if args.exit_on_shutdown:
            host.quit = True

    def keep_going(kernel: zembed.Kernel) -> bool:
        return not host.quit and time.monotonic() < deadline and (kernel.running or not args.exit_on_shutdown)

    if args.loop in ("asyncio", "tornado"):

        async def run() -> None:
            host.before_kernel()
            if args.loop == "tornado":
                from tornado.ioloop import IOLoop

                kernel = zembed.start_kernel(
                    namespace, name=args.name or None, loop=IOLoop.current(), on_shutdown=on_shutdown
                )
            else:
                kernel = zembed.start_kernel(namespace, name=args.name or None, on_shutdown=on_shutdown)
            namespace["kernel"] = kernel
            register_host_magics(kernel, host)
            announce(kernel)
            while keep_going(kernel):
                host.frame()
                await asyncio.sleep(period)
            kernel.stop()

        asyncio.run(run())
        return

    if args.loop in ("asyncio-forever", "tornado-start"):
        # The most natural embedding: set up the loop, start the kernel
        # (loop left to "auto"), then hand the thread to the loop.
        if args.loop == "tornado-start":
            from tornado.ioloop import IOLoop

            io_loop = IOLoop.current()
            aio = io_loop.asyncio_loop  # type: ignore[attr-defined]
        else:
            aio = asyncio.new_event_loop()
            asyncio.set_event_loop(aio)
        host.before_kernel()
        kernel = zembed.start_kernel(namespace, name=args.name or None, on_shutdown=on_shutdown)
        namespace["kernel"] = kernel

        def tick() -> None:
            if not keep_going(kernel):
                kernel.stop()
                aio.stop()
                return
            host.frame()
            aio.call_later(period, tick)

        aio.call_soon(tick)
        announce(kernel)
        if args.loop == "tornado-start":
            io_loop.start()
        else:
            aio.run_forever()
        return

    if args.loop in ("qt", "tk"):
        run_toolkit(args, host, namespace, period, on_shutdown, keep_going)
        return

    if args.loop == "callable":
        # The one-callable contract: a plain thread-safe queue drained each frame.
        tasks: queue.SimpleQueue = queue.SimpleQueue()
        host.before_kernel()
        kernel = zembed.start_kernel(namespace, name=args.name or None, loop=tasks.put, on_shutdown=on_shutdown)

        def pump() -> None:
            while True:
                try:
                    tasks.get_nowait()()
                except queue.Empty:
                    return
    else:
        host.before_kernel()
        kernel = zembed.start_kernel(namespace, name=args.name or None, loop="poll", on_shutdown=on_shutdown)
        pump = kernel.poll
    namespace["kernel"] = kernel
    register_host_magics(kernel, host)
    announce(kernel)
    while keep_going(kernel):
        pump()
        host.frame()
        time.sleep(period)
    kernel.stop()


def run_toolkit(args: argparse.Namespace, host: Host, namespace: dict, period: float, on_shutdown, keep_going) -> None:
    """A GUI-toolkit host: its own timer draws frames; zembed joins its loop."""
    kernels: list[zembed.Kernel] = []
    loop_spec = "auto" if args.auto else args.loop
    interval_ms = max(1, int(period * 1000))

    def start() -> None:
        host.before_kernel()
        kernel = zembed.start_kernel(namespace, name=args.name or None, loop=loop_spec, on_shutdown=on_shutdown)
        namespace["kernel"] = kernel
        kernels.append(kernel)
        register_host_magics(kernel, host)
        announce(kernel)

    def frame() -> bool:
        if kernels and not keep_going(kernels[0]):
            return False
        host.frame()
        return True

    if args.loop == "qt":
        from PySide6.QtCore import QCoreApplication, QTimer

        app = QCoreApplication([])
        timer = QTimer()
        timer.timeout.connect(lambda: frame() or app.quit())
        timer.start(interval_ms)
        call_later, run_loop = (lambda f: QTimer.singleShot(0, f)), app.exec
    else:
        import tkinter

        root = tkinter.Tk()
        root.withdraw()

        def tick() -> None:
            if frame():
                root.after(interval_ms, tick)
            else:
                root.quit()

        root.after(interval_ms, tick)
        call_later, run_loop = (lambda f: root.after(0, f)), root.mainloop
    if args.start_in_loop:
        call_later(start)
    else:
        start()
    run_loop()
    for kernel in kernels:
        kernel.stop()


if __name__ == "__main__":
    main()
