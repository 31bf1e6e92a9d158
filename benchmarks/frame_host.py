"""A 60 Hz host for the frame-budget benchmark: asyncio, Qt (offscreen) or a
poll loop, with or without a zembed kernel.

    python benchmarks/frame_host.py --loop asyncio|qt|poll [--no-kernel] [--seconds 5]

Prints a JSON line {"connection_file"} (null without a kernel) when ready,
then measures for --seconds: how late each frame's timer fired, and the
process's CPU time per frame; prints them as a JSON line and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

PERIOD = 1 / 60


class Meter:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lateness: list[float] = []
        self.started = 0.0
        self.cpu_started = 0.0

    def begin(self) -> None:
        self.started = time.monotonic()
        self.cpu_started = time.process_time()

    def frame(self, deadline: float) -> bool:
        """Record one frame woken for ``deadline``; False when time is up."""
        now = time.monotonic()
        self.lateness.append(now - deadline)
        return now - self.started < self.seconds

    def report(self) -> dict[str, float]:
        cpu = time.process_time() - self.cpu_started
        late = sorted(self.lateness)
        return {
            "frames": len(late),
            "cpu_per_frame_us": cpu / max(1, len(late)) * 1e6,
            "lateness_p50_ms": late[len(late) // 2] * 1e3,
            "lateness_p99_ms": late[min(len(late) - 1, int(len(late) * 0.99))] * 1e3,
        }


def announce(kernel: object | None) -> None:
    path = str(kernel.connection_file) if kernel is not None else None  # type: ignore[attr-defined]
    print(json.dumps({"connection_file": path, "pid": os.getpid()}), flush=True)


def start(loop: str | object, use_kernel: bool) -> object | None:
    if not use_kernel:
        return None
    import zembed

    return zembed.start_kernel({}, name="frame-budget", loop=loop)


def run_asyncio(meter: Meter, use_kernel: bool) -> None:
    import asyncio

    async def main() -> None:
        kernel = start("asyncio", use_kernel)
        announce(kernel)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        meter.begin()
        deadline = time.monotonic() + PERIOD

        def frame() -> None:
            nonlocal deadline
            if not meter.frame(deadline):
                done.set_result(None)
                return
            deadline += PERIOD
            loop.call_at(loop.time() + max(0.0, deadline - time.monotonic()), frame)

        loop.call_at(loop.time() + PERIOD, frame)
        await done
        if kernel is not None:
            kernel.stop()  # type: ignore[attr-defined]

    asyncio.run(main())


def run_qt(meter: Meter, use_kernel: bool) -> None:
    from PySide6.QtCore import QCoreApplication, Qt, QTimer

    app = QCoreApplication([])
    kernel = start("qt", use_kernel)
    announce(kernel)
    deadline = time.monotonic() + PERIOD
    timer = QTimer()
    timer.setSingleShot(True)
    timer.setTimerType(Qt.TimerType.PreciseTimer)

    def frame() -> None:
        nonlocal deadline
        if not meter.frame(deadline):
            app.quit()
            return
        deadline += PERIOD
        timer.start(max(0, round((deadline - time.monotonic()) * 1000)))

    timer.timeout.connect(frame)
    meter.begin()
    timer.start(round(PERIOD * 1000))
    app.exec()
    if kernel is not None:
        kernel.stop()  # type: ignore[attr-defined]


def run_poll(meter: Meter, use_kernel: bool) -> None:
    kernel = start("poll", use_kernel)
    announce(kernel)
    meter.begin()
    deadline = time.monotonic() + PERIOD
    while True:
        time.sleep(max(0.0, deadline - time.monotonic()))
        if not meter.frame(deadline):
            break
        if kernel is not None:
            kernel.poll()  # type: ignore[attr-defined]
        deadline += PERIOD
    if kernel is not None:
        kernel.stop()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loop", choices=["asyncio", "qt", "poll"], required=True)
    parser.add_argument("--no-kernel", action="store_true")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    meter = Meter(args.seconds)
    {"asyncio": run_asyncio, "qt": run_qt, "poll": run_poll}[args.loop](meter, not args.no_kernel)
    print(json.dumps(meter.report()), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
