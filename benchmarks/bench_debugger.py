"""What the debugger costs: off, starting, on (no breakpoint hit), and off
again, for zembed and for ipykernel embedded in the same host, same run.

    python benchmarks/bench_debugger.py [--rounds 3] [--executes 200]

Each round starts a 60 Hz host (benchmarks/bench_host.py, ``--work`` Python
calls per frame: the host's own code, which a debugger traces too) with
zembed and one with ipykernel, and drives each as JupyterLab does with
jupyter_client (``debug_request`` on control).  Per kernel and state:
execute ``1`` round trip p50, the host's own per-frame work p50, and a
cell making 100,000 Python calls (its own time, inside the cell); and the
time from ``initialize`` to the end of ``attach`` (JupyterLab's start).
Target: off costs nothing measurable (the same as before the debugger
existed; ``bench_kernel.py --baseline`` compares against an older tree).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_kernel import HERE, Process, percentile
from jupyter_client import BlockingKernelClient

WORK = 2000  # Python calls per frame in the host's own loop
CALLS_CELL = "import time as _t\ndef _f(x):\n    return x + 1\n_s = _t.perf_counter()\nfor _i in range(100000):\n    _f(_i)\n_dt = _t.perf_counter() - _s\n"  # noqa: E501


class DebugClient:
    def __init__(self, connection_file: str) -> None:
        self.kc = BlockingKernelClient(connection_file=connection_file)
        self.kc.load_connection_file()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=30)
        self.seq = 0

    def dap(self, command: str, **arguments: Any) -> dict[str, Any]:
        self.seq += 1
        content = {"type": "request", "seq": self.seq, "command": command, "arguments": arguments}
        msg = self.kc.session.msg("debug_request", content)
        self.kc.control_channel.send(msg)
        while True:
            reply = self.kc.control_channel.get_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                if not reply["content"].get("success"):
                    raise RuntimeError(f"{command}: {reply['content']}")
                return dict(reply["content"])

    def start(self) -> float:
        began = time.perf_counter()
        self.dap("initialize", clientID="bench", adapterID="python", pathFormat="path", linesStartAt1=True,
                 columnsStartAt1=True)  # fmt: skip
        self.dap("attach")
        self.dap("configurationDone")
        return time.perf_counter() - began

    def execute(self, code: str, **expressions: str) -> dict[str, Any]:
        msg_id = self.kc.execute(code, user_expressions=expressions)
        while True:
            reply = self.kc.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == msg_id:
                return dict(reply["content"])

    def round_trips(self, count: int) -> list[float]:
        samples = []
        for _ in range(count):
            began = time.perf_counter()
            self.execute("1")
            samples.append(time.perf_counter() - began)
        return samples

    def host_work(self, seconds: float = 2.0) -> float:
        """p50 of the host's own per-frame work over ``seconds``, in ms."""
        mark = self.execute("_m = host.mark()", m="_m")["user_expressions"]["m"]["data"]["text/plain"]
        time.sleep(seconds)  # the host's frames run meanwhile: what is measured is their own timing
        text = self.execute("", w=f"host.work_since({mark})")["user_expressions"]["w"]["data"]["text/plain"]
        return float(statistics.median(eval(text))) * 1000  # a list literal of floats

    def cell_calls(self) -> float:
        reply = self.execute(CALLS_CELL, dt="_dt")
        return float(reply["user_expressions"]["dt"]["data"]["text/plain"]) * 1000

    def close(self) -> None:
        self.kc.stop_channels()


def measure(kernel: str, executes: int) -> dict[str, float]:
    host = Process(str(HERE / "bench_host.py"), "--kernel", kernel, "--work", str(WORK))
    client = DebugClient(host.info["connection_file"])
    figures: dict[str, float] = {}
    try:
        client.round_trips(30)

        def state(name: str) -> None:
            figures[f"{name} execute p50 ms"] = percentile(client.round_trips(executes), 50) * 1000
            figures[f"{name} host frame work p50 ms"] = client.host_work()
            figures[f"{name} 100k calls cell ms"] = client.cell_calls()

        state("off")
        figures["start ms"] = client.start() * 1000
        state("on")
        client.dap("disconnect", restart=False, terminateDebuggee=False)
        time.sleep(0.5)  # pydevd's threads end within a moment of its stop
        state("off again")
        return figures
    finally:
        client.close()
        host.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--executes", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the per-round figures here")
    args = parser.parse_args()
    os.environ.setdefault("JUPYTER_RUNTIME_DIR", str(Path(tempfile.gettempdir()) / "zembed-bench-debugger-runtime"))
    rounds = []
    for number in range(1, args.rounds + 1):
        print(f"round {number}/{args.rounds} ...", file=sys.stderr, flush=True)
        rounds.append({kernel: measure(kernel, args.executes) for kernel in ("zembed", "ipykernel")})

    names = list(rounds[0]["zembed"])
    print(f"\nthe debugger off, starting, on (no breakpoint hit), off again: medians of {args.rounds} rounds")
    print(f"{'':34} {'zembed':>9} {'ipykernel':>10} {'ratio':>6}")
    for name in names:
        ours = statistics.median(r["zembed"][name] for r in rounds)
        theirs = statistics.median(r["ipykernel"][name] for r in rounds)
        ratio = statistics.median(r["zembed"][name] / r["ipykernel"][name] for r in rounds)
        print(f"{name:34} {ours:>9.3f} {theirs:>10.3f} {ratio:>6.2f}")
    if args.json:
        args.json.write_text(json.dumps(rounds, indent=2))


if __name__ == "__main__":
    main()
