"""Kernelspecs that put zembed hosts in every Jupyter frontend's kernel list.

Two kinds, both installed with jupyter_client's own ``KernelSpecManager``
(so ``--user``, ``--sys-prefix`` and ``--prefix`` mean what they mean to
``jupyter kernelspec install``):

- a **relay** spec, ``zembed-APP``: "attach to the running host of app
  APP" (``python -m zjupyter relay APP -f {connection_file}``);
- a **launch** spec (``--launch CMD ...``): "start the host CMD, served as
  this kernel" (``python -m zembed launch {connection_file} -- CMD ...``):
  the host's ``start_kernel`` serves the ports and key the frontend chose.

Both say ``interrupt_mode: "message"``: a host never gets a signal from a
frontend; an interrupt is a message its kernel answers.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from zembed.frontend import ConnectionFileError

SPEC_PREFIX = "zembed-"
METADATA_KEY = "zembed"  # in the spec's metadata: what zembed wrote it for


def spec_name(app: str) -> str:
    """A kernelspec name for ``app``: Jupyter allows letters, digits, ``. _ -``."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", app).strip("-").lower() or "app"
    return SPEC_PREFIX + cleaned


def relay_spec(app: str, display_name: str | None = None, *, forward_shutdown: bool = False) -> dict[str, Any]:
    argv = [sys.executable, "-m", "zjupyter", "relay", app, "-f", "{connection_file}"]
    if forward_shutdown:
        argv.append("--forward-shutdown")
    return {
        "argv": argv,
        "display_name": display_name or f"{app} (zembed)",
        "language": "python",
        "interrupt_mode": "message",
        "metadata": {METADATA_KEY: {"kind": "relay", "app": app}, "debugger": True},
    }


def launch_spec(app: str, command: list[str], display_name: str | None = None) -> dict[str, Any]:
    if not command:
        raise ValueError("--launch needs the host's command after --, e.g. --launch -- blender --python addon.py")
    if command[0] in ("python", "python3"):  # as jupyter_client does for a spec's own argv[0]: this Python
        command = [sys.executable, *command[1:]]
    return {
        "argv": [sys.executable, "-m", "zembed", "launch", "{connection_file}", "--", *command],
        "display_name": display_name or f"{app} (new host)",
        "language": "python",
        "interrupt_mode": "message",
        "metadata": {METADATA_KEY: {"kind": "launch", "app": app, "command": command}, "debugger": True},
    }


def install(
    spec: dict[str, Any],
    name: str,
    *,
    user: bool = False,
    prefix: str | None = None,
) -> str:
    """Install ``spec`` as kernelspec ``name``; the folder it went to."""
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        return str(KernelSpecManager().install_kernel_spec(folder, name, user=user, prefix=prefix, replace=True))


def installed() -> dict[str, dict[str, Any]]:
    """The zembed kernelspecs installed: name -> {resource_dir, spec}."""
    from jupyter_client.kernelspec import KernelSpecManager

    found = {}
    for name, entry in KernelSpecManager().get_all_specs().items():
        metadata = entry.get("spec", {}).get("metadata") or {}
        if METADATA_KEY in metadata:
            found[name] = entry
    return found


def remove(name: str) -> str:
    """Remove zembed kernelspec ``name``; the folder removed."""
    specs = installed()
    if name not in specs:
        names = ", ".join(sorted(specs)) or "none"
        raise ConnectionFileError(f"no zembed kernelspec named {name!r} (installed: {names})")
    folder = specs[name]["resource_dir"]
    shutil.rmtree(folder)
    return str(folder)
