"""Hosts as engines of an ipyparallel cluster, next to plain ipengines.

    python benchmarks/bench_cluster.py [--rounds 3] [--sizes 1,4,16,64]

One real ``ipcontroller`` on loopback (a temporary profile).  For each N,
N zembed hosts (``bench_host.py``: a 60 Hz asyncio frame loop, zembed
inside, ``ZEMBED_CLUSTER`` set) join it, and then N plain ``ipengine``
processes do, in the same round, taking turns per N so the machine's drift
falls on both alike.  Timed with an unmodified ``ipyparallel.Client``:

- a broadcast ``apply`` of a trivial function to all N (``rc[:].apply_sync``),
- a 1 MB ``push`` to all N (``rc[:].push``, block=True).

Then the frame lateness p99 of one host under a broadcast loop (4 hosts,
``apply_sync`` back to back for a few seconds), next to the same host with
the loop not running.  Medians over rounds; ratios zembed / ipengine per
round, then their median.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ipyparallel as ipp

HERE = Path(__file__).resolve().parent
BATCH = 8  # engines started at once


def median_call(function, repeats: int) -> float:  # type: ignore[no-untyped-def]
    function()  # warm: the first call also sets up the view's sockets
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1000


class Farm:
    def __init__(self, profile: Path, data: Path) -> None:
        self.profile = profile
        self.data = data
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, kind: str, n: int, rc: ipp.Client) -> list[int]:
        """Start ``n`` of ``kind``, a batch at a time (64 engines registering
        at once on two cores made the controller purge ipengines whose first
        heartbeat came late: they do not try again); their engine ids."""
        before = set(rc.ids)
        for first in range(0, n, BATCH):
            count = min(BATCH, n - first)
            self._start(kind, count)
            deadline = time.monotonic() + 300
            while len(set(rc.ids) - before) < first + count:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{kind}: {len(set(rc.ids) - before)} of {first + count} engines registered")
                time.sleep(0.1)
        return sorted(set(rc.ids) - before)

    def _start(self, kind: str, n: int) -> None:
        engine_file = self.profile / "security" / "ipcontroller-engine.json"
        for _ in range(n):
            if kind == "zembed":
                env = {**os.environ, "ZEMBED_CLUSTER": str(engine_file), "ZEMBED_DATA_DIR": str(self.data)}
                command = [sys.executable, str(HERE / "bench_host.py"), "--kernel", "zembed"]
            else:
                env = dict(os.environ)
                command = [sys.executable, "-m", "ipyparallel.engine", f"--profile-dir={self.profile}"]
                command += ["--log-level=40", "--IPEngine.timeout=60"]  # 5 s, and it exits: too short for 64 at once
            self.processes.append(
                subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
        for process in self.processes:
            process.wait(30)
        self.processes.clear()


def measure(rc: ipp.Client, farm: Farm, kind: str, n: int, repeats: int) -> dict[str, float]:
    try:
        view = rc[farm.start(kind, n, rc)]  # only this farm's: the last one's may not all be gone yet
        trivial = median_call(lambda: view.apply_sync(ipp.interactive(lambda: None)), repeats)
        blob = b"x" * 2**20
        push = median_call(lambda: view.push({"blob": blob}, block=True), max(3, repeats // 4))
        return {"apply_ms": trivial, "push_1mb_ms": push}
    finally:
        farm.stop()
        deadline = time.monotonic() + 60
        while rc.ids and time.monotonic() < deadline:  # killed: their nannies tell the controller
            time.sleep(0.05)


def lateness(rc: ipp.Client, farm: Farm, seconds: float) -> dict[str, float]:
    """p99 frame lateness (ms) of one zembed host of 4 under a broadcast loop,
    and of the same host with no kernel (``--kernel none``) running beside
    them meanwhile: the machine's load falls on both; then idle."""
    try:
        ids = farm.start("zembed", 4, rc)
        view, one = rc[ids], rc[ids[0]]
        mark = ipp.interactive(lambda: host.mark())  # noqa: F821 - the bench host's own object

        def p99_since(start: int) -> float:
            samples = one.apply_sync(ipp.interactive(lambda m: host.lateness_since(m)), start)  # noqa: F821
            return statistics.quantiles(samples, n=100)[98] * 1000

        time.sleep(seconds)  # the hosts started last are still importing: let the machine settle
        alone = subprocess.Popen(
            [sys.executable, str(HERE / "bench_host.py"), "--kernel", "none", "--run-for", str(seconds + 1.5)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert alone.stdout is not None
        alone.stdout.readline()  # it is up (its first line); its frames run from here
        start = one.apply_sync(mark)
        end = time.monotonic() + seconds
        calls = 0
        while time.monotonic() < end:
            view.apply_sync(ipp.interactive(lambda: None))
            calls += 1
        loaded = p99_since(start)
        beside = statistics.quantiles(json.loads(alone.stdout.readline())["lateness"], n=100)[98] * 1000
        alone.wait(30)
        start = one.apply_sync(mark)
        time.sleep(seconds)
        idle = p99_since(start)
        return {
            "idle_p99_ms": idle,
            "loaded_p99_ms": loaded,
            "alone_p99_ms": beside,
            "broadcasts_per_s": calls / seconds,
        }
    finally:
        farm.stop()


def start_controller(profile: Path) -> tuple[subprocess.Popen[bytes], ipp.Client]:
    """A real ipcontroller on loopback with ``profile``, and a client of it."""
    controller = subprocess.Popen(
        [sys.executable, "-m", "ipyparallel.controller", f"--profile-dir={profile}", "--ip=127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its schedulers are processes of their own: killed with it, as a group
    )
    while not (profile / "security" / "ipcontroller-client.json").exists():
        if controller.poll() is not None:
            raise RuntimeError("ipcontroller exited before writing its files")
        time.sleep(0.1)
    return controller, ipp.Client(profile_dir=str(profile), timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="1,4,16,64")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=5.0, help="of each lateness sample")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",") if n]
    with tempfile.TemporaryDirectory() as tmp:
        profile, data = Path(tmp) / "profile_bench", Path(tmp) / "data"
        profile.mkdir()
        controller, rc = start_controller(profile)
        try:
            farm = Farm(profile, data)
            rounds = []
            for number in range(1, args.rounds + 1):
                print(f"round {number}/{args.rounds} ...", file=sys.stderr, flush=True)
                figures: dict[str, dict[str, float]] = {}
                for n in sizes:
                    for kind in ("zembed", "ipengine"):
                        for attempt in (1, 2):  # a farm of 64 on two cores: an engine may be declared dead
                            try:
                                figures[f"{kind}-{n}"] = measure(rc, farm, kind, n, args.repeats)
                                break
                            except (ipp.error.CompositeError, ipp.error.EngineError, TimeoutError) as exc:
                                print(f"  {kind} x {n}, attempt {attempt}: {exc}".splitlines()[0], file=sys.stderr)
                                if attempt == 2:
                                    raise
                figures["lateness"] = lateness(rc, farm, args.seconds)
                rounds.append(figures)
            rc.close()
        finally:
            os.killpg(controller.pid, signal.SIGKILL)  # the schedulers outlive a controller killed alone
            controller.wait()
    if args.json:
        args.json.write_text(json.dumps(rounds, indent=2))
    report(rounds, sizes)


def report(rounds: list[dict[str, dict[str, float]]], sizes: list[int]) -> None:
    print(f"\nmedians of {len(rounds)} rounds; ratio = zembed / ipengine, per round, then the median")
    print(f"{'N':>4} {'what':<22} {'zembed ms':>10} {'ipengine ms':>12} {'ratio':>7}")
    for n in sizes:
        for key, label in (("apply_ms", "broadcast apply"), ("push_1mb_ms", "1 MB push")):
            ours = statistics.median(r[f"zembed-{n}"][key] for r in rounds)
            theirs = statistics.median(r[f"ipengine-{n}"][key] for r in rounds)
            ratio = statistics.median(r[f"zembed-{n}"][key] / r[f"ipengine-{n}"][key] for r in rounds)
            print(f"{n:>4} {label:<22} {ours:>10.2f} {theirs:>12.2f} {ratio:>7.2f}")
    late = {key: statistics.median(r["lateness"][key] for r in rounds) for key in rounds[0]["lateness"]}
    print(
        f"frame lateness p99 of one of 4 hosts under a broadcast loop ({late['broadcasts_per_s']:.0f} broadcasts/s):"
        f" {late['loaded_p99_ms']:.2f} ms; the host alone beside it meanwhile {late['alone_p99_ms']:.2f} ms:"
        f" {late['loaded_p99_ms'] - late['alone_p99_ms']:+.2f} ms (target <= 2); the host in the cluster, idle:"
        f" {late['idle_p99_ms']:.2f} ms"
    )


if __name__ == "__main__":
    main()
