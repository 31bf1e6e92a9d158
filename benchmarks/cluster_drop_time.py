"""How soon the controller drops a killed engine: a zembed host vs an ipengine.

    python benchmarks/cluster_drop_time.py [--rounds 3]

One real ``ipcontroller``; each round starts one zembed bench host (joined
through ``ZEMBED_CLUSTER``) and then one ``ipengine``, kills each with
SIGKILL once registered, and times until the client no longer lists it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_cluster import start_controller

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "profile_drop"
        profile.mkdir()
        controller, rc = start_controller(profile)
        try:
            engine_file = profile / "security" / "ipcontroller-engine.json"
            commands = {
                "zembed": [sys.executable, str(HERE / "bench_host.py"), "--kernel", "zembed"],
                "ipengine": [sys.executable, "-m", "ipyparallel.engine", f"--profile-dir={profile}", "--log-level=40"],
            }
            env = {**os.environ, "ZEMBED_CLUSTER": str(engine_file), "ZEMBED_DATA_DIR": str(Path(tmp) / "data")}
            times: dict[str, list[float]] = {kind: [] for kind in commands}
            for _ in range(args.rounds):
                for kind, command in commands.items():
                    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    rc.wait_for_engines(1, timeout=120)
                    time.sleep(2)  # registered and settled
                    began = time.monotonic()
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()
                    while rc.ids:
                        time.sleep(0.005)
                    times[kind].append(time.monotonic() - began)
            rc.close()
        finally:
            controller.kill()
            controller.wait()
    for kind, samples in times.items():
        print(f"{kind:<9} dropped {', '.join(f'{s * 1000:.0f}' for s in samples)} ms after SIGKILL")


if __name__ == "__main__":
    main()
