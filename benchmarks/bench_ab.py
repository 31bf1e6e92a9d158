"""execute round trips (`1`, or ``--code``) of this tree against another checkout of zembed,
or against the protocol floor, interleaved in blocks so the machine's drift
falls on both alike: the test for "a change costs nothing measurable" on a
noisy machine, and the steadiest zembed-to-floor ratio it gives.

    python benchmarks/bench_ab.py /path/to/other/checkout [--rounds 5] [--executes 400]
    python benchmarks/bench_ab.py floor [--client jupyter_client]

Each round starts a 60 Hz zembed host (benchmarks/bench_host.py) from each
tree (or one, and benchmarks/floor_server.py) and measures both with the
same client, 50 executes at a time, alternating: bench_kernel's
``RawClient`` (until ``idle``), or with ``--client jupyter_client``
jupyter_client's ``BlockingKernelClient`` (until the reply, and until
``idle``).  Prints each round's p50 and the median of the rounds' ratios
(this tree / the other), p50 and p99.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_kernel import (
    HERE,
    Process,
    RawClient,
    compile_bytecode,
    jupyter_client_connected,
    jupyter_client_timed,
    percentile,
)

BLOCK = 50
COMPLETE = object()  # in place of a cell: a complete_request of COMPLETED (the floor answers it empty)
COMPLETED = "host.lat"
Sample = dict[str, float]  # what one execute measured: "idle", and "reply" with jupyter_client, in seconds


def raw_client(connection_file: str) -> tuple[Callable[[Any], Sample], Callable[[], None]]:
    client = RawClient(connection_file)
    client.wait_ready()
    client.drain()

    def execute(code: Any) -> Sample:
        began = time.perf_counter()
        if code == COMPLETE:
            client.request("complete_request", {"code": COMPLETED, "cursor_pos": len(COMPLETED)})
        else:
            client.execute(code)
        return {"idle": time.perf_counter() - began}

    return execute, client.close


def jupyter_client(connection_file: str) -> tuple[Callable[[Any], Sample], Callable[[], None]]:
    client = jupyter_client_connected(connection_file)

    def execute(code: Any) -> Sample:
        if code == COMPLETE:
            reply, idle = jupyter_client_timed(client, lambda: client.complete(COMPLETED, len(COMPLETED)))
        else:
            reply, idle = jupyter_client_timed(client, lambda: client.execute(code))
        return {"reply": reply, "idle": idle}

    return execute, client.stop_channels


CLIENTS = {"raw": raw_client, "jupyter_client": jupyter_client}


def one_round(other: str, executes: int, code: Any = "1", block: int = BLOCK, client: str = "raw") -> dict[str, Any]:
    """p50 and p99 (ms) of each measure, for "this" and "other"."""
    hosts = {"this": Process(str(HERE / "bench_host.py"), "--kernel", "zembed")}
    if other == "floor":
        hosts["other"] = Process(str(HERE / "floor_server.py"))
    else:
        hosts["other"] = Process(str(HERE / "bench_host.py"), "--kernel", "zembed", pythonpath=other)
    closers: list[Callable[[], None]] = []
    try:
        executors = {}
        for name, host in hosts.items():
            executors[name], close = CLIENTS[client](host.info["connection_file"])
            closers.append(close)
            for _ in range(30 if code in ("1", COMPLETE) else 3):
                executors[name](code)
        samples: dict[str, list[Sample]] = {name: [] for name in hosts}
        while len(samples["this"]) < executes:
            for name, execute in executors.items():
                samples[name] += [execute(code) for _ in range(block)]
        figures: dict[str, Any] = {}
        for name, measured in samples.items():
            for measure in measured[0]:
                values = [sample[measure] for sample in measured]
                figures.setdefault(name, {})[f"{measure} p50"] = percentile(values, 50) * 1000
                figures[name][f"{measure} p99"] = percentile(values, 99) * 1000
        return figures
    finally:
        for close in closers:
            close()
        for host in hosts.values():
            host.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "other", help="a checkout of another zembed (git worktree add /tmp/base REV), or 'floor' for the floor server"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--executes", type=int, default=400)
    parser.add_argument("--code", default="1", help="the cell timed (execute `1` unless given)")
    parser.add_argument("--block", type=int, default=BLOCK, help="executes per tree before switching")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="raw")
    parser.add_argument("--request", choices=["execute", "complete"], default="execute")
    args = parser.parse_args()
    compile_bytecode(None if args.other == "floor" else Path(args.other))
    code: Any = COMPLETE if args.request == "complete" else args.code
    rounds = [one_round(args.other, args.executes, code, args.block, args.client) for _ in range(args.rounds)]
    main_measure = "reply p50" if args.client == "jupyter_client" else "idle p50"
    for number, figures in enumerate(rounds, 1):
        print(
            f"round {number}: {main_measure}: this {figures['this'][main_measure]:.3f} ms,"
            f" other {figures['other'][main_measure]:.3f} ms"
        )
    what = f"complete `{COMPLETED}`" if args.request == "complete" else f"execute `{args.code}`"
    print(f"{what} with the {args.client} client, medians of {args.rounds} rounds (this / {args.other}):")
    for measure in rounds[0]["this"]:
        ratios = [r["this"][measure] / r["other"][measure] for r in rounds]
        print(
            f"  until {measure}: this {statistics.median(r['this'][measure] for r in rounds):.3f} ms,"
            f" other {statistics.median(r['other'][measure] for r in rounds):.3f} ms,"
            f" ratio {statistics.median(ratios):.3f} (rounds {min(ratios):.2f} to {max(ratios):.2f})"
        )


if __name__ == "__main__":
    main()
