"""What ``%profile_host`` costs the host while it samples.

    python benchmarks/bench_profile_host.py [--rounds 3] [--seconds 5] [--work 20000]

A 60 Hz asyncio host (benchmarks/bench_host.py) doing ``--work`` Python
calls per frame: its own per-frame work time and frame lateness are measured
for a window with zembed idle, then for the same window while
``%profile_host`` samples it.  Medians over rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_kernel import HERE, Process, RawClient, percentile  # noqa: E402


def window(client: RawClient, seconds: float) -> tuple[list[float], list[float]]:
    mark = client.value("host.mark()")
    time.sleep(seconds)
    return client.value(f"host.work_since({mark})"), client.value(f"host.lateness_since({mark})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--work", type=int, default=20000)
    args = parser.parse_args()
    rows = []
    for number in range(1, args.rounds + 1):
        print(f"round {number}/{args.rounds} ...", file=sys.stderr, flush=True)
        host = Process(str(HERE / "bench_host.py"), "--kernel", "zembed", "--work", str(args.work))
        try:
            client = RawClient(host.info["connection_file"])
            client.wait_ready()
            client.drain()
            time.sleep(1.0)  # settle
            idle_work, idle_late = window(client, args.seconds)
            client.execute(f"%profile_host {args.seconds + 1}")
            prof_work, prof_late = window(client, args.seconds)
            client.close()
        finally:
            host.stop()
        rows.append(
            {
                "work_idle_ms": statistics.median(idle_work) * 1000,
                "work_profiled_ms": statistics.median(prof_work) * 1000,
                "late_idle_p99_ms": percentile(idle_late, 99) * 1000,
                "late_profiled_p99_ms": percentile(prof_late, 99) * 1000,
            }
        )

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    ratio = statistics.median(r["work_profiled_ms"] / r["work_idle_ms"] for r in rows)
    print(f"\n%profile_host overhead, 60 Hz host doing {args.work} calls per frame; medians of {args.rounds} rounds")
    print(
        f"host's own work per frame: {med('work_idle_ms'):.2f} ms idle kernel, "
        f"{med('work_profiled_ms'):.2f} ms while profiled (x{ratio:.2f})"
    )
    print(
        f"frame lateness p99:        {med('late_idle_p99_ms'):.2f} ms idle kernel, "
        f"{med('late_profiled_p99_ms'):.2f} ms while profiled"
    )


if __name__ == "__main__":
    main()
