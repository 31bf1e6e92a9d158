"""Frame budget of an embedded kernel in a 60 Hz host: asyncio, Qt
(offscreen) and a poll loop.

For each loop, in rounds, three runs of benchmarks/frame_host.py:
  alone   the host without a kernel,
  idle    with a kernel nobody talks to,
  hammer  with a kernel while a client sends `execute("1")` back to back.
Reported: CPU time per frame (idle minus alone = what an idle kernel costs
each frame) and frame lateness p99 (hammer minus alone), medians of rounds.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_frame_budget.py [--rounds 5] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).parent


def run(loop: str, mode: str, seconds: float) -> dict[str, float]:
    command = [sys.executable, str(HERE / "frame_host.py"), "--loop", loop, "--seconds", str(seconds)]
    if mode == "alone":
        command.append("--no-kernel")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    host = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert host.stdout is not None
        ready = json.loads(host.stdout.readline())
        stop = threading.Event()
        executes = [0]
        if mode == "hammer":
            threading.Thread(target=hammer, args=(ready["connection_file"], stop, executes), daemon=True).start()
        result = json.loads(host.stdout.readline())
        stop.set()
        result["executes"] = executes[0]
        return result
    finally:
        host.kill()
        host.wait()


def hammer(connection_file: str, stop: threading.Event, count: list[int]) -> None:
    import zembed

    with zembed.connect(connection_file) as client:
        while not stop.is_set():
            try:
                client.execute("1", timeout=5)
            except Exception:
                return
            count[0] += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--loops", default="asyncio,qt,poll")
    args = parser.parse_args()
    for loop in args.loops.split(","):
        rows: dict[str, list[dict[str, float]]] = {"alone": [], "idle": [], "hammer": []}
        for _ in range(args.rounds):
            for mode in rows:
                rows[mode].append(run(loop, mode, args.seconds))

        def median(mode: str, key: str, rows: dict[str, list[dict[str, float]]] = rows) -> float:
            return statistics.median(r[key] for r in rows[mode])

        idle_cost = statistics.median(
            i["cpu_per_frame_us"] - a["cpu_per_frame_us"] for i, a in zip(rows["idle"], rows["alone"], strict=True)
        )
        late_delta = statistics.median(
            h["lateness_p99_ms"] - a["lateness_p99_ms"] for h, a in zip(rows["hammer"], rows["alone"], strict=True)
        )
        print(
            f"{loop:8} CPU/frame alone {median('alone', 'cpu_per_frame_us'):7.1f} µs, idle kernel "
            f"{median('idle', 'cpu_per_frame_us'):7.1f} µs -> idle kernel costs {idle_cost:+.1f} µs/frame (target < 20)"
        )
        print(
            f"{'':8} lateness p99 alone {median('alone', 'lateness_p99_ms'):.2f} ms, idle "
            f"{median('idle', 'lateness_p99_ms'):.2f} ms, under hammer {median('hammer', 'lateness_p99_ms'):.2f} ms "
            f"({median('hammer', 'executes') / args.seconds:.0f} executes/s) -> {late_delta:+.2f} ms (target <= +2)"
        )


if __name__ == "__main__":
    main()
