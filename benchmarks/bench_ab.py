"""execute round trips (`1`, or ``--code``) of this tree against another checkout of zembed,
interleaved in blocks so the machine's drift falls on both alike: the test
for "a change costs nothing measurable" on a noisy machine.

    python benchmarks/bench_ab.py /path/to/other/checkout [--rounds 5] [--executes 400]

Each round starts a 60 Hz zembed host (benchmarks/bench_host.py) from each
tree and measures both with the same client (bench_kernel's ``RawClient``),
50 executes at a time, alternating.  Prints each round's p50 and the
median of the rounds' ratios (this tree / the other).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from bench_kernel import HERE, Process, RawClient, compile_bytecode, percentile, timed

BLOCK = 50


def one_round(other: Path, executes: int, code: str = "1", block: int = BLOCK) -> dict[str, float]:
    hosts = {
        "this": Process(str(HERE / "bench_host.py"), "--kernel", "zembed"),
        "other": Process(str(HERE / "bench_host.py"), "--kernel", "zembed", pythonpath=str(other)),
    }
    clients: dict[str, RawClient] = {}
    try:
        clients = {name: RawClient(host.info["connection_file"]) for name, host in hosts.items()}
        for client in clients.values():
            client.wait_ready()
            client.drain()
            for _ in range(3 if code != "1" else 30):
                client.execute(code)
        samples: dict[str, list[float]] = {name: [] for name in clients}
        while len(samples["this"]) < executes:
            for name, client in clients.items():
                samples[name] += timed(lambda c=client: c.execute(code), block)
        return {name: percentile(values, 50) * 1000 for name, values in samples.items()}
    finally:
        for client in clients.values():
            client.close()
        for host in hosts.values():
            host.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("other", type=Path, help="a checkout of another zembed (git worktree add /tmp/base REV)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--executes", type=int, default=400)
    parser.add_argument("--code", default="1", help="the cell timed (execute `1` unless given)")
    parser.add_argument("--block", type=int, default=BLOCK, help="executes per tree before switching")
    args = parser.parse_args()
    compile_bytecode(args.other)
    rounds = [one_round(args.other, args.executes, args.code, args.block) for _ in range(args.rounds)]
    for number, figures in enumerate(rounds, 1):
        print(f"round {number}: this {figures['this']:.3f} ms, other {figures['other']:.3f} ms")
    ratios = [r["this"] / r["other"] for r in rounds]
    this = statistics.median(r["this"] for r in rounds)
    print(
        f"execute `{args.code}` p50, medians of {args.rounds} rounds: this {this:.3f} ms,"
        f" other {statistics.median(r['other'] for r in rounds):.3f} ms, ratio {statistics.median(ratios):.3f}"
        f" (rounds {min(ratios):.2f} to {max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
