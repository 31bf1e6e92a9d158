"""Widgets on a running host: zembed vs ipykernel embedded in the same 60 Hz host.

    python benchmarks/bench_widgets.py [--rounds 5] [--updates 300]

Per round and kernel, a fresh host (benchmarks/bench_host.py) makes an
ipywidgets IntSlider with an observer, then:

- round trip: the client sends what a page sends when the slider moves
  (``comm_msg`` ``update``) and waits for the ``echo_update`` that says the
  host took it (the observer has run on the host's thread by then);
- pushed from the frame loop: the host's own per-frame code sets the value
  ``--per-frame`` times each frame for ``--seconds``; the client counts the
  updates that arrive per second, and the host's frame lateness p99 is
  taken over the same frames.

The same client (bench_kernel's ``RawClient``) measures both kernels;
ratios are per round, medians over rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import zmq
from bench_kernel import HERE, Process, RawClient, percentile

SETUP = (
    "from ipywidgets import IntSlider\n"
    "slider = IntSlider(value=0, min=0, max=10**9)\n"
    "host.observed = 0\n"
    "def observed(change):\n"
    "    host.observed += 1\n"
    "slider.observe(observed, 'value')\n"
)


def comm_messages(client: RawClient, timeout: float) -> Any:
    """iopub comm_msg contents arriving within ``timeout`` (a generator)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not client.iopub.poll(left * 1000):
            return
        _, message = client.session.recv(client.iopub, mode=zmq.NOBLOCK)
        if message is not None and message["msg_type"] == "comm_msg":
            yield message["content"]


def round_trip(client: RawClient, model_id: str, value: int) -> float:
    data = {"method": "update", "state": {"value": value}, "buffer_paths": []}
    began = time.perf_counter()
    client.session.send(client.shell, "comm_msg", {"comm_id": model_id, "data": data})
    for content in comm_messages(client, 10):
        state = content["data"].get("state", {})
        if content["data"].get("method") == "echo_update" and state.get("value") == value:
            return time.perf_counter() - began
    raise TimeoutError("no echo_update")


def measure(kind: str, args: argparse.Namespace) -> dict[str, float]:
    host = Process(str(HERE / "bench_host.py"), "--kernel", kind)
    try:
        client = RawClient(host.info["connection_file"])
        client.wait_ready()
        client.drain()
        client.execute(SETUP)
        model_id = client.value("slider.model_id")
        client.drain()
        for value in range(1, 21):  # warm up
            round_trip(client, model_id, value)
        samples = [round_trip(client, model_id, value) for value in range(100, 100 + args.updates)]
        observed = client.value("host.observed")
        assert observed == 20 + args.updates, f"{kind}: the observer ran {observed} times for {20 + args.updates}"
        mark = client.value("host.mark()")
        client.execute(
            f"def push():\n    for _ in range({args.per_frame}):\n        slider.value += 1\n"
            "host.per_frame.append(push)"
        )
        client.drain()
        began = time.monotonic()
        received = sum(1 for c in comm_messages(client, args.seconds) if c["data"].get("method") == "update")
        elapsed = time.monotonic() - began
        client.execute("host.per_frame.clear()")
        lateness = client.value(f"host.lateness_since({mark})")
        client.close()
        return {
            "round_trip_p50_ms": percentile(samples, 50) * 1000,
            "round_trip_p99_ms": percentile(samples, 99) * 1000,
            "pushed_per_s": received / elapsed,
            "lateness_p99_ms": percentile(lateness, 99) * 1000,
        }
    finally:
        host.stop()


ROWS = [
    ("update round trip p50 (ms)", "round_trip_p50_ms"),
    ("update round trip p99 (ms)", "round_trip_p99_ms"),
    ("updates/s pushed from the frame loop", "pushed_per_s"),
    ("frame lateness p99 while pushing (ms)", "lateness_p99_ms"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--per-frame", type=int, default=50, help="updates the host pushes each frame")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    rounds = []
    for number in range(1, args.rounds + 1):
        print(f"round {number}/{args.rounds} ...", file=sys.stderr, flush=True)
        rounds.append({kind: measure(kind, args) for kind in ("zembed", "ipykernel")})
    print(f"\nipywidgets IntSlider on a 60 Hz host; medians of {args.rounds} rounds")
    print(f"{'metric':40} {'zembed':>10} {'ipykernel':>10} {'ratio':>7}")
    for label, metric in ROWS:
        z = statistics.median(r["zembed"][metric] for r in rounds)
        i = statistics.median(r["ipykernel"][metric] for r in rounds)
        ratio = statistics.median(r["zembed"][metric] / r["ipykernel"][metric] for r in rounds)
        print(f"{label:40} {z:>10.3f} {i:>10.3f} {ratio:>7.2f}")
    print(f"({args.per_frame} updates pushed per frame at 60 Hz: {args.per_frame * 60} offered per second)")


if __name__ == "__main__":
    main()
