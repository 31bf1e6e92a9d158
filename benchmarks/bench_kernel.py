"""zembed vs ipykernel embedded in the same 60 Hz host, plus the protocol floor.

    python benchmarks/bench_kernel.py [--rounds 3] [--json results.json]

Every round starts fresh host processes (benchmarks/bench_host.py) and
measures each implementation with the same clients: ``RawClient`` (pyzmq
sockets with jupyter_client's Session doing the signing and JSON), and
jupyter_client's own ``BlockingKernelClient``, as jupyter console, nbclient
and papermill use it (until the reply, and until the request's ``idle``).  Ratios
are taken per round and the table shows their medians: the machine is
shared and noisy, so no single run is trusted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import zmq
from jupyter_client.session import Session

HERE = Path(__file__).parent


class RawClient:
    """Shell DEALER + iopub SUB with jupyter_client's Session: one request at a time."""

    def __init__(self, connection_file: str) -> None:
        info = json.loads(Path(connection_file).read_text())
        self.session = Session(key=info["key"].encode())
        self.ctx = zmq.Context()
        self.shell = self.ctx.socket(zmq.DEALER)
        self.shell.connect(f"tcp://{info['ip']}:{info['shell_port']}")
        self.iopub = self.ctx.socket(zmq.SUB)
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.iopub.connect(f"tcp://{info['ip']}:{info['iopub_port']}")
        self.poller = zmq.Poller()
        self.poller.register(self.shell, zmq.POLLIN)
        self.poller.register(self.iopub, zmq.POLLIN)

    def first_reply(self, timeout: float = 60) -> float:
        """Send kernel_info every 10 ms until one is answered; return that wall time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.session.send(self.shell, "kernel_info_request", {})
            if self.shell.poll(10):
                when = time.time()
                self.session.recv(self.shell)
                return when
        raise TimeoutError("kernel never answered kernel_info")

    def wait_ready(self, timeout: float = 60) -> None:
        """Until a request gets both its reply and its iopub messages."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.request("kernel_info_request", {}, timeout=0.2)
                return
            except TimeoutError:
                continue
        raise TimeoutError("kernel never became ready")

    def drain(self, quiet_ms: int = 0) -> None:
        """Read what is queued, until nothing more comes for ``quiet_ms``."""
        for sock in (self.shell, self.iopub):
            while sock.poll(quiet_ms):
                sock.recv_multipart()

    def request(self, msg_type: str, content: dict[str, Any], timeout: float = 60) -> tuple[dict, list[dict]]:
        msg = self.session.msg(msg_type, content)
        msg_id = msg["header"]["msg_id"]
        self.session.send(self.shell, msg)
        reply, outputs, idle = None, [], False
        deadline = time.monotonic() + timeout
        while reply is None or not idle:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(msg_type)
            for sock, _ in self.poller.poll(left * 1000):
                _, received = self.session.recv(sock, mode=zmq.NOBLOCK)
                if received is None or received["parent_header"].get("msg_id") != msg_id:
                    continue
                if sock is self.shell:
                    reply = received
                else:
                    outputs.append(received)
                    if received["msg_type"] == "status" and received["content"]["execution_state"] == "idle":
                        idle = True
        return reply, outputs

    def execute(self, code: str, timeout: float = 60) -> tuple[dict, list[dict]]:
        return self.request(
            "execute_request",
            {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False},
            timeout,
        )

    def value(self, code: str) -> Any:
        import ast

        _, outputs = self.execute(code)
        for out in outputs:
            if out["msg_type"] == "execute_result":
                return ast.literal_eval(out["content"]["data"]["text/plain"])
        raise RuntimeError(f"no result for {code!r}: {outputs}")

    def close(self) -> None:
        self.shell.close(0)
        self.iopub.close(0)
        self.ctx.term()


class Process:
    def __init__(self, *args: str, pythonpath: str | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else None
        self.popen = subprocess.Popen(
            [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=HERE.parent, env=env
        )
        while True:
            line = self.popen.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise RuntimeError(f"{args} did not start")
            if line.startswith(b"{"):
                self.info = json.loads(line)
                return

    def stop(self) -> None:
        self.popen.kill()
        self.popen.wait()


def jupyter_client_connected(connection_file: str) -> Any:
    """jupyter_client's BlockingKernelClient, as jupyter console, nbclient,
    papermill and most scripts use it, connected and ready."""
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=connection_file)
    client.load_connection_file()
    client.start_channels(stdin=False, hb=False, control=False)  # the floor server has shell and iopub only
    client.wait_for_ready(timeout=30)
    return client


def jupyter_client_timed(client: Any, send: Callable[[], str]) -> tuple[float, float]:
    """Seconds from ``send()`` (which sends a request, returning its msg_id)
    until its reply, and until its ``idle`` status on iopub."""
    began = time.perf_counter()
    msg_id = send()
    while client.get_shell_msg(timeout=30)["parent_header"].get("msg_id") != msg_id:
        pass
    replied = time.perf_counter()
    while True:
        message = client.get_iopub_msg(timeout=30)
        if (
            message["parent_header"].get("msg_id") == msg_id
            and message["msg_type"] == "status"
            and message["content"]["execution_state"] == "idle"
        ):
            return replied - began, time.perf_counter() - began


def jupyter_client_round_trips(connection_file: str, executes: int) -> dict[str, float]:
    """execute `1` with jupyter_client's BlockingKernelClient: until the
    reply, and until the request's ``idle``."""
    client = jupyter_client_connected(connection_file)
    try:
        for _ in range(30):  # warm-up
            jupyter_client_timed(client, lambda: client.execute("1"))
        timings = [jupyter_client_timed(client, lambda: client.execute("1")) for _ in range(executes)]
    finally:
        client.stop_channels()
    replies, idles = [reply for reply, _ in timings], [idle for _, idle in timings]
    return {
        "jc_reply_p50_ms": percentile(replies, 50) * 1000,
        "jc_reply_p99_ms": percentile(replies, 99) * 1000,
        "jc_idle_p50_ms": percentile(idles, 50) * 1000,
        "jc_idle_p99_ms": percentile(idles, 99) * 1000,
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def timed(fn: Any, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def cpu_percent_idle(pid: int, seconds: float) -> float:
    process = psutil.Process(pid)
    before = sum(process.cpu_times()[:2])
    time.sleep(seconds)
    return (sum(process.cpu_times()[:2]) - before) / seconds * 100


def measure_kernel(kind: str, args: argparse.Namespace, pythonpath: str | None = None) -> dict[str, float]:
    host = Process(str(HERE / "bench_host.py"), "--kernel", kind, pythonpath=pythonpath)
    result: dict[str, float] = {}
    try:
        client = RawClient(host.info["connection_file"])
        result["startup_s"] = client.first_reply() - host.info["t0"]
        client.wait_ready()
        client.drain()
        client.execute("1")
        added = client.value("host.added()")
        result["rss_added_mb"] = added["rss"] / 2**20
        result["private_added_mb"] = added["private"] / 2**20
        result["threads_added"] = added["threads"]
        for _ in range(30):
            client.execute("1")
        lat = timed(lambda: client.execute("1"), args.executes)
        result["exec_p50_ms"] = percentile(lat, 50) * 1000
        result["exec_p99_ms"] = percentile(lat, 99) * 1000
        result.update(jupyter_client_round_trips(host.info["connection_file"], args.executes))
        # This client's iopub socket queued every message of that session: read them now, or the first
        # request below waits while the client verifies thousands of them (measured: 57 ms of "cold complete").
        client.drain(quiet_ms=20)
        complete = {"code": "host.lat", "cursor_pos": 8}
        result["first_complete_ms"] = timed(lambda: client.request("complete_request", complete), 1)[0] * 1000
        comp = timed(lambda: client.request("complete_request", complete), args.executes // 2)
        result["complete_p50_ms"] = percentile(comp, 50) * 1000
        result["complete_p99_ms"] = percentile(comp, 99) * 1000
        t0 = time.perf_counter()
        _, outputs = client.execute("for i in range(100000): print(i)", timeout=300)
        elapsed = time.perf_counter() - t0
        text = "".join(o["content"]["text"] for o in outputs if o["msg_type"] == "stream")
        assert text == "".join(f"{i}\n" for i in range(100000)), f"{kind}: lines lost or out of order"
        result["lines_per_s"] = 100000 / elapsed
        result["print_stall_ms"], result["print_stall_stringio_ms"] = print_stalls(client)
        big = timed(lambda: client.execute("'x' * 10_000_000"), 5)
        result["result_10mb_ms"] = statistics.median(big) * 1000
        result["idle_cpu_pct"] = cpu_percent_idle(host.info["pid"], args.idle_seconds)
        mark = client.value("host.mark()")
        end = time.monotonic() + args.hammer_seconds
        hammered = 0
        while time.monotonic() < end:
            client.execute("1")
            hammered += 1
        lateness = client.value(f"host.lateness_since({mark})")
        result["hammer_lateness_p99_ms"] = percentile(lateness, 99) * 1000
        result["hammer_rate"] = hammered / args.hammer_seconds
        result["paced_lateness_p99_ms"], result["paced_rate"] = paced_lateness(client, PACED_RATE, args.hammer_seconds)
        result["threads_added_end"] = client.value("host.added()")["threads"]  # after every kind of work above
        client.close()
    finally:
        host.stop()
    return result


PACED_RATE = 500  # executes a second: what zembed serves with room to spare (ipykernel cannot: it gets less)


def paced_lateness(client: RawClient, rate: float, seconds: float) -> tuple[float, float]:
    """Frame lateness p99 (ms) while the client sends ``rate`` executes a
    second, evenly, and the rate reached: the host's cost per request at
    the same load for two trees of zembed (hammering back to back, the
    faster one serves more requests a second, and its host does more work)."""
    mark = client.value("host.mark()")
    began = due = time.monotonic()
    end = due + seconds
    sent = 0
    while due < end:
        client.execute("1")
        sent += 1
        due += 1 / rate
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # pacing: the next request is due then, nothing to wait on
        else:
            due = time.monotonic()  # late: no catching up in a burst
    rate_reached = sent / (time.monotonic() - began)
    return percentile(client.value(f"host.lateness_since({mark})"), 99) * 1000, rate_reached


def print_stalls(client: RawClient, repeats: int = 5) -> tuple[float, float]:
    """How long a cell printing 100,000 lines holds the host's thread (the
    longest frame lateness while it runs), captured, and printing the same
    to an ``io.StringIO`` in the same host (the baseline): medians, in ms."""
    stalls: dict[str, list[float]] = {"captured": [], "stringio": []}
    loops = {"captured": "for i in range(100000): print(i)",
             "stringio": "_s = __import__('io').StringIO()\nfor i in range(100000): print(i, file=_s)"}  # fmt: skip
    for _ in range(repeats):
        for name, code in loops.items():
            mark = client.value("host.mark()")
            client.execute(code, timeout=300)
            # the first frame after the cell is the one its run made late
            while not (late := client.value(f"host.lateness_since({mark})")):
                time.sleep(0.002)
            stalls[name].append(max(late) * 1000)
    return statistics.median(stalls["captured"]), statistics.median(stalls["stringio"])


def measure_floor(args: argparse.Namespace) -> dict[str, float]:
    server = Process(str(HERE / "floor_server.py"))
    try:
        client = RawClient(server.info["connection_file"])
        client.wait_ready()
        for _ in range(30):
            client.execute("1")
        lat = timed(lambda: client.execute("1"), args.executes)
        # the floor answers a complete_request as it answers any other: busy, an empty reply, idle
        comp = timed(
            lambda: client.request("complete_request", {"code": "host.lat", "cursor_pos": 8}), args.executes // 2
        )
        big = timed(lambda: client.execute("'x' * 10_000_000"), 5)
        client.close()
        deps = Process(str(HERE / "bench_host.py"), "--kernel", "deps")  # the floor of memory: the dependencies
        deps.stop()
        return {
            "rss_added_mb": deps.info["added"]["rss"] / 2**20,
            "private_added_mb": deps.info["added"]["private"] / 2**20,
            "complete_p50_ms": percentile(comp, 50) * 1000,
            "complete_p99_ms": percentile(comp, 99) * 1000,
            **jupyter_client_round_trips(server.info["connection_file"], args.executes),
            "exec_p50_ms": percentile(lat, 50) * 1000,
            "exec_p99_ms": percentile(lat, 99) * 1000,
            "result_10mb_ms": statistics.median(big) * 1000,
        }
    finally:
        server.stop()


def measure_alone(args: argparse.Namespace) -> dict[str, float]:
    """The host with no kernel: idle CPU and frame lateness, the baseline."""
    host = Process(
        str(HERE / "bench_host.py"), "--kernel", "none", "--run-for", str(args.idle_seconds + args.hammer_seconds + 1)
    )
    try:
        time.sleep(0.5)
        cpu = cpu_percent_idle(host.info["pid"], args.idle_seconds)
        line = host.popen.stdout.readline()  # type: ignore[union-attr]
        lateness = json.loads(line)["lateness"]
        return {"idle_cpu_pct": cpu, "hammer_lateness_p99_ms": percentile(lateness, 99) * 1000}
    finally:
        host.stop()


ROWS = [
    # (label, metric, compare with, target as text, passes(ratio or values))
    ("execute `1` p50 (ms)", "exec_p50_ms"),
    ("execute `1` p99 (ms)", "exec_p99_ms"),
    ("jupyter_client: reply p50 (ms)", "jc_reply_p50_ms"),
    ("jupyter_client: reply p99 (ms)", "jc_reply_p99_ms"),
    ("jupyter_client: idle p50 (ms)", "jc_idle_p50_ms"),
    ("jupyter_client: idle p99 (ms)", "jc_idle_p99_ms"),
    ("complete p50 (ms)", "complete_p50_ms"),
    ("complete p99 (ms)", "complete_p99_ms"),
    ("first complete, cold (ms)", "first_complete_ms"),
    ("import+start to kernel_info (s)", "startup_s"),
    ("RSS added (MB)", "rss_added_mb"),
    ("  of which private, not file-backed (MB)", "private_added_mb"),
    ("threads added", "threads_added"),
    ("threads added, at the end", "threads_added_end"),
    ("100k lines printed (lines/s)", "lines_per_s"),
    ("100k-line cell: frame stall (ms)", "print_stall_ms"),
    ("same, to a StringIO (ms)", "print_stall_stringio_ms"),
    ("10 MB execute_result (ms)", "result_10mb_ms"),
    ("frame lateness p99 under load (ms)", "hammer_lateness_p99_ms"),
    ("  the load: executes a second", "hammer_rate"),
    (f"frame lateness p99, {PACED_RATE} executes/s (ms)", "paced_lateness_p99_ms"),
    ("  executes a second reached", "paced_rate"),
    ("idle host CPU (%)", "idle_cpu_pct"),
]


def compile_bytecode(*checkouts: Path | None) -> None:
    """Write the bytecode of zembed (this tree's, and each checkout's) as an
    install does.  Without it (PYTHONDONTWRITEBYTECODE, or a fresh editable
    checkout) every host start compiles zembed from source: 1.3 MB more RSS
    and slower starts than an installed zembed, while ipykernel's bytecode
    came with its wheel."""
    import compileall

    import zembed

    for tree in (Path(zembed.__file__).parent, *(c / "zembed" for c in checkouts if c is not None)):
        compileall.compile_dir(str(tree), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--executes", type=int, default=300)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--hammer-seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path, help="also write all samples here")
    parser.add_argument(
        "--baseline", type=Path, help="a checkout of an earlier zembed, measured in the same rounds (zembed / baseline)"
    )
    args = parser.parse_args()
    os.environ.setdefault("JUPYTER_RUNTIME_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "zembed-bench-runtime"))
    compile_bytecode(args.baseline)

    rounds: list[dict[str, dict[str, float]]] = []
    for number in range(1, args.rounds + 1):
        print(f"round {number}/{args.rounds} ...", file=sys.stderr, flush=True)
        rounds.append(
            {
                "zembed": measure_kernel("zembed", args),
                "ipykernel": measure_kernel("ipykernel", args),
                "floor": measure_floor(args),
                "alone": measure_alone(args),
                **({"baseline": measure_kernel("zembed", args, str(args.baseline))} if args.baseline else {}),
            }
        )

    def med(kind: str, metric: str) -> float | None:
        values = [r[kind][metric] for r in rounds if metric in r[kind]]
        return statistics.median(values) if values else None

    def med_ratio(metric: str, other: str) -> float | None:
        values = [r["zembed"][metric] / r[other][metric] for r in rounds if metric in r[other] and r[other][metric]]
        return statistics.median(values) if values else None

    print(f"\nzembed vs ipykernel, embedded in the same 60 Hz asyncio host; medians of {args.rounds} rounds")
    print(f"{'metric':36} {'zembed':>10} {'ipykernel':>10} {'ratio':>7} {'floor':>9} {'vs floor':>8}")
    for label, metric in ROWS:
        z, i, f = med("zembed", metric), med("ipykernel", metric), med("floor", metric)
        ratio = med_ratio(metric, "ipykernel")
        floor_ratio = med_ratio(metric, "floor")
        print(
            f"{label:36} {z:>10.3f} {i:>10.3f} {ratio:>7.2f} "
            f"{(f'{f:.3f}' if f is not None else '-'):>9} {(f'{floor_ratio:.2f}' if floor_ratio else '-'):>8}"
        )
    alone_lat, alone_cpu = med("alone", "hammer_lateness_p99_ms"), med("alone", "idle_cpu_pct")
    z_lat, z_cpu = med("zembed", "hammer_lateness_p99_ms"), med("zembed", "idle_cpu_pct")
    print(f"host alone: frame lateness p99 {alone_lat:.3f} ms, idle CPU {alone_cpu:.2f} %")
    print(
        f"zembed - alone: lateness p99 {z_lat - alone_lat:+.3f} ms (target <= 2), "
        f"idle CPU {z_cpu - alone_cpu:+.2f} points (target <= 0.2)"
    )
    if args.baseline:
        print(f"\nzembed vs the baseline at {args.baseline}, same rounds (ratio < 1: faster or smaller now)")
        for label, metric in ROWS:
            ratio = med_ratio(metric, "baseline")
            base = med("baseline", metric)
            if ratio is not None and base is not None:
                print(f"{label:36} {med('zembed', metric):>10.3f} {base:>10.3f} {ratio:>7.2f}")
    if args.json:
        args.json.write_text(json.dumps(rounds, indent=2))


if __name__ == "__main__":
    main()
