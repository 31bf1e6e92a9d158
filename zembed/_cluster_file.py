"""The controller's engine file, ``ipcontroller-engine.json``: where it is
(profile, profile dir, cluster id, as ``ipengine`` takes them), what it
must hold, and whether it changed (a restarted controller writes a new one).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._errors import UsageError
from ._protocol import SIGNATURE_SCHEME

FIELDS = ("interface", "registration", "control", "mux", "task", "iopub", "hb_ping", "hb_pong", "broadcast", "key")


class ClusterError(UsageError):
    """The engine file cannot be used."""


def engine_file_for(
    profile: str | None = None, profile_dir: str | os.PathLike[str] | None = None, cluster_id: str = ""
) -> Path:
    """Where ipcontroller writes its engine file: ``<profile_dir>/security/
    ipcontroller[-<cluster_id>]-engine.json``, the profile dir being
    ``$IPYTHONDIR/profile_<profile>`` (``~/.ipython``) unless given."""
    if profile_dir is None:
        base = Path(os.environ.get("IPYTHONDIR") or Path.home() / ".ipython").expanduser()
        profile_dir = base / f"profile_{profile or 'default'}"
    elif profile is not None:
        raise ClusterError("cluster: give a profile or a profile_dir, not both")
    name = f"ipcontroller-{cluster_id}-engine.json" if cluster_id else "ipcontroller-engine.json"
    return Path(profile_dir).expanduser() / "security" / name


def read_engine_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The controller's ``ipcontroller-engine.json``, checked."""
    file = Path(path).expanduser()
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClusterError(
            f"cluster: no controller file {file} (ipcontroller writes ipcontroller-engine.json"
            " in its profile's security folder when it starts)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ClusterError(f"cluster: cannot read the controller file {file}: {exc}") from None
    if not isinstance(info, dict):
        raise ClusterError(f"cluster: {file} is not an ipcontroller-engine.json (not a JSON object)")
    missing = [name for name in FIELDS if name not in info]
    if missing:
        raise ClusterError(f"cluster: {file} lacks {', '.join(missing)}: is it ipcontroller-engine.json?")
    if info.get("signature_scheme", SIGNATURE_SCHEME) != SIGNATURE_SCHEME:
        raise ClusterError(f"cluster: {file} uses {info['signature_scheme']}; zembed speaks {SIGNATURE_SCHEME}")
    if not info["key"] and not info.get("curve_serverkey"):
        raise ClusterError(f"cluster: {file} has an empty key and no Curve: zembed never joins an open cluster")
    if not isinstance(info["broadcast"], list) or not info["broadcast"]:
        raise ClusterError(f"cluster: {file} has no broadcast schedulers")
    info["path"] = str(file)
    return info


def file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size
