"""What the relay costs: an execute round trip through it, next to the direct
one to the same host and to ipykernel's direct one, in the same rounds.

    python benchmarks/bench_relay.py [--rounds 5] [--executes 300]

Each round starts a 60 Hz zembed host and an ipykernel host
(benchmarks/bench_host.py) and a relay (``python -m zjupyter relay bench``)
on a connection file written as a launcher writes one; the same client
(bench_kernel's ``RawClient``) measures all three, interleaved in blocks
so drift in the machine's load falls on each alike.  Target: the relay
adds at most 0.3 ms at p50.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_kernel import HERE, Process, RawClient, percentile, timed
from jupyter_client.connect import write_connection_file

BLOCK = 50  # executes per path before switching to the next


def start_relay(app: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    path = str(folder / "relay.json")
    write_connection_file(path, ip="127.0.0.1", key=os.urandom(16).hex().encode())  # free ports, a key
    relay = subprocess.Popen(
        [sys.executable, "-m", "zjupyter", "relay", app, "-f", path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=HERE.parent,
    )
    return relay, path


def attached(client: RawClient, timeout: float = 30) -> None:
    """Until the relay forwards (its own kernel_info says ``relay``; the host's does not)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply, _ = client.request("kernel_info_request", {}, timeout=5)
        if not reply["content"].get("zembed", {}).get("relay"):
            return
        time.sleep(0.05)  # the relay looks for the host every 0.5 s: nothing to wait on from here
    raise TimeoutError("the relay never attached")


def one_round(executes: int) -> dict[str, list[float]]:
    zembed_host = Process(str(HERE / "bench_host.py"), "--kernel", "zembed")
    ipykernel_host = Process(str(HERE / "bench_host.py"), "--kernel", "ipykernel")
    folder = Path(tempfile.mkdtemp(prefix="zembed-bench-relay-"))
    relay, relay_file = start_relay("bench", folder)
    clients: dict[str, RawClient] = {}
    try:
        clients = {
            "direct": RawClient(zembed_host.info["connection_file"]),
            "relay": RawClient(relay_file),
            "ipykernel": RawClient(ipykernel_host.info["connection_file"]),
        }
        for name, client in clients.items():
            client.wait_ready()
            if name == "relay":
                attached(client)
            client.drain()
            for _ in range(30):
                client.execute("1")
        samples: dict[str, list[float]] = {name: [] for name in clients}
        while len(samples["direct"]) < executes:
            for name, client in clients.items():
                samples[name] += timed(lambda c=client: c.execute("1"), BLOCK)
        return samples
    finally:
        for client in clients.values():
            client.close()
        relay.kill()
        relay.wait()
        zembed_host.stop()
        ipykernel_host.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--executes", type=int, default=300)
    parser.add_argument("--json", type=Path, help="also write the per-round figures here")
    args = parser.parse_args()
    os.environ.setdefault("JUPYTER_RUNTIME_DIR", str(Path(tempfile.gettempdir()) / "zembed-bench-relay-runtime"))

    rounds = []
    for number in range(1, args.rounds + 1):
        print(f"round {number}/{args.rounds} ...", file=sys.stderr, flush=True)
        samples = one_round(args.executes)
        rounds.append(
            {
                name: {"p50_ms": percentile(values, 50) * 1000, "p99_ms": percentile(values, 99) * 1000}
                for name, values in samples.items()
            }
        )

    def med(name: str, metric: str) -> float:
        return statistics.median(r[name][metric] for r in rounds)

    added = statistics.median(r["relay"]["p50_ms"] - r["direct"]["p50_ms"] for r in rounds)
    print(f"\nexecute `1` round trip, medians of {args.rounds} rounds x {args.executes} executes per path")
    print(f"{'path':28} {'p50 (ms)':>9} {'p99 (ms)':>9} {'p50 / ipykernel':>16}")
    for name, label in [("direct", "zembed, direct"), ("relay", "zembed, through the relay"),
                        ("ipykernel", "ipykernel, direct")]:  # fmt: skip
        ratio = statistics.median(r[name]["p50_ms"] / r["ipykernel"]["p50_ms"] for r in rounds)
        print(f"{label:28} {med(name, 'p50_ms'):>9.3f} {med(name, 'p99_ms'):>9.3f} {ratio:>16.2f}")
    print(f"the relay adds {added:+.3f} ms at p50 (target <= 0.3)")
    if args.json:
        args.json.write_text(json.dumps(rounds, indent=2))


if __name__ == "__main__":
    main()
