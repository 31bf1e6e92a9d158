"""``zembed lab`` and ``zembed notebook``: the real JupyterLab (or Notebook 7)
with every live host in its launcher and kernel picker, installing nothing.

The server is started with ``ZembedKernelSpecManager``: the kernelspecs
installed as usual, plus a relay spec (``zembed-APP``) for each live zembed
host, made from the connection files as the server asks.  Starting such a
kernel starts the relay (``zjupyter.relay``) with the connection file the
server wrote; a notebook saved with that kernel finds it again later, host
running or not (the relay waits for it).  Authentication is
jupyter_server's own (a token, then its signed login cookie): nothing here
touches it.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel

from zembed.frontend import ConnectionFileError, KernelRecord, read_connection_file, resolve, runtime_dir

from .kernelspec import SPEC_PREFIX, relay_spec, spec_name

LIVE_FOR = 2.0  # seconds a look at the running hosts is reused (the server asks for specs often)


def live_hosts() -> dict[str, KernelRecord]:
    """The newest live host of each app, by kernelspec name."""
    found: dict[str, KernelRecord] = {}
    try:
        paths = sorted(runtime_dir().glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return found
    apps_seen: set[str] = set()
    for path in paths:
        try:
            meta = read_connection_file(path).get("zembed")
            app = meta.get("app") if isinstance(meta, dict) else None
            # Only zembed hosts are probed, and only until an app's newest live one is found:
            # relays and other kernels (the server's own among them) cost no heartbeat.
            if not isinstance(app, str) or app in apps_seen:
                continue
            record = resolve(str(path), timeout=0.3)
        except (ConnectionFileError, OSError, ValueError):
            continue
        if record.alive:
            apps_seen.add(app)
            found[spec_name(app)] = record
    return found


class ZembedKernelSpecManager(KernelSpecManager):  # type: ignore[misc]
    """Installed kernelspecs, and a relay spec for each live zembed host."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._resources = tempfile.mkdtemp(prefix="zembed-kernelspecs-")
        atexit.register(shutil.rmtree, self._resources, True)
        self._apps: dict[str, str] = {}  # spec name -> app, for every host seen since the start
        self._looked = 0.0
        self._live: dict[str, KernelRecord] = {}

    def _hosts(self) -> dict[str, KernelRecord]:
        if time.monotonic() - self._looked > LIVE_FOR:
            self._live = live_hosts()
            self._looked = time.monotonic()
            for name, record in self._live.items():
                self._apps[name] = str(record.app)
        return self._live

    def _resource_dir(self, name: str) -> str:
        folder = os.path.join(self._resources, name)
        os.makedirs(folder, exist_ok=True)
        return folder

    def find_kernel_specs(self) -> dict[str, str]:
        specs = dict(super().find_kernel_specs())
        for name in self._hosts():
            specs.setdefault(name, self._resource_dir(name))
        return specs

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        try:
            return super().get_kernel_spec(kernel_name)
        except NoSuchKernel:
            if not kernel_name.startswith(SPEC_PREFIX):
                raise
        self._hosts()
        # A host seen before, or a notebook saved with a host's kernel: the relay waits for it.
        app = self._apps.get(kernel_name, kernel_name[len(SPEC_PREFIX) :])
        spec = relay_spec(app, f"{app} (zembed, running)" if kernel_name in self._live else f"{app} (zembed)")
        return KernelSpec(resource_dir=self._resource_dir(kernel_name), **spec)


SERVERS = {"lab": "jupyterlab", "notebook": "notebook"}


def server_command(which: str, server_args: list[str]) -> list[str]:
    manager = f"{__name__}.ZembedKernelSpecManager"
    return [sys.executable, "-m", SERVERS[which], f"--ServerApp.kernel_spec_manager_class={manager}", *server_args]


def main(which: str, server_args: list[str]) -> int:
    module = SERVERS[which]
    if importlib.util.find_spec(module) is None:
        print(f"zembed {which}: {module} is not installed: pip install 'zembed[lab]'", file=sys.stderr)
        return 2
    command = server_command(which, server_args)
    os.execv(command[0], command)
    return 0  # not reached
