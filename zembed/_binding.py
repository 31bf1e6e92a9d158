"""Where a kernel is reached, and who may bind there.

Owns where a kernel binds (its own choice, or exactly what a launcher
wrote in the connection file), the Curve policy for an address (encrypt a
non-loopback bind, refuse an unencrypted one unless the host accepts the
risk) and the connection files of this process's kernels: each running
kernel claims its own (two given one path would make the first
unreachable), and a stopping kernel removes only a file that still holds
its key, or, when a launcher wrote the file, gives it back as it was.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from ._config import KernelConfig
from ._connection import CHANNELS, read_connection_file, write_connection_file
from ._errors import ConnectionFileError, UsageError
from ._private import remove_quietly
from ._protocol import SIGNATURE_SCHEME, new_key

log = logging.getLogger("zembed")

_files_in_use: set[Path] = set()
_files_lock = threading.Lock()


@dataclass
class Endpoint:
    """Where and how a kernel serves."""

    transport: str
    ip: str
    ports: dict[str, int]  # 0: pick a free one
    key: bytes
    launcher: dict[str, Any] | None = None  # the file as a launcher wrote it: served exactly, given back at the end


def endpoint_for(config: KernelConfig, path: Path) -> Endpoint:
    """The kernel's own endpoint from ``config``, or, when a launcher (a
    Jupyter ``KernelManager``, say) wrote ``path`` with ports and a key,
    exactly those: the launcher talks to the ports it chose."""
    launcher = launcher_fields(path)
    if launcher is None:
        ports = {c: int(getattr(config, f"{c}_port")) for c in CHANNELS}
        return Endpoint(config.transport, config.ip, ports, new_key())
    scheme = launcher.get("signature_scheme", SIGNATURE_SCHEME)
    if scheme != SIGNATURE_SCHEME:
        raise ConnectionFileError(
            f"{path} asks for signature scheme {scheme!r}; zembed signs with {SIGNATURE_SCHEME} only"
        )
    if not launcher["key"]:
        raise ConnectionFileError(f"{path} has an empty key; zembed never serves unsigned messages")
    ports = {c: launcher[f"{c}_port"] for c in CHANNELS}
    return Endpoint(launcher["transport"], launcher["ip"], ports, launcher["key"].encode("utf-8"), launcher)


def launcher_fields(path: Path) -> dict[str, Any] | None:
    """What a launcher wrote at ``path`` for this kernel, or None: no file,
    an empty one, or one zembed wrote itself (an earlier run's, with a
    ``zembed`` block), which is replaced.  A file that is there but is
    not a usable connection file is an error, not something to overwrite."""
    try:
        if not path.exists() or path.stat().st_size == 0:
            return None
    except OSError as exc:
        raise ConnectionFileError(f"cannot read connection file {path}: {exc.strerror or exc}") from None
    info = read_connection_file(path)
    return None if "zembed" in info else info


def curve_keypair_for(config: KernelConfig, transport: str, ip: str) -> tuple[bytes, bytes] | None:
    """The Curve keypair to serve with at ``ip``, or None; refuse unsafe binds."""
    loopback = transport != "tcp" or ip in ("localhost", "::1") or ip.startswith("127.")
    wanted = config.encryption == "curve" or (config.encryption == "auto" and not loopback)
    if wanted:
        if not zmq.has("curve"):
            raise UsageError(
                "CurveZMQ encryption is needed but this pyzmq's libzmq lacks it; "
                "install a pyzmq wheel (they bundle libzmq with Curve) or bind loopback"
            )
        return zmq.curve_keypair()
    if loopback:
        return None
    if not config.allow_insecure_remote:
        raise UsageError(
            f"refusing to bind {ip!r} without encryption: anyone who reaches the iopub port could "
            "read all output. Use encryption='auto' or 'curve' (CurveZMQ), or bind loopback and use an "
            "SSH tunnel, or pass allow_insecure_remote=True to accept the risk."
        )
    log.warning(
        "zembed: WARNING: binding %s WITHOUT encryption (allow_insecure_remote): everything the kernel "
        "sends, and every cell sent to it, is readable by anyone on the network",
        ip,
    )
    return None


def claim_connection_file(config: KernelConfig) -> Path:
    """The connection file a new kernel will write: the one given, else the
    first default name no running kernel of this process holds."""
    with _files_lock:
        path = config.connection_path(taken=_files_in_use)
        if path in _files_in_use:
            raise UsageError(
                f"connection file {path} is already used by another kernel in this process; "
                "give each kernel its own name or connection_file"
            )
        _files_in_use.add(path)
        return path


def release_connection_file(path: Path) -> None:
    with _files_lock:
        _files_in_use.discard(path)


def remove_own_connection_file(path: Path, key: str, launcher: dict[str, Any] | None = None) -> None:
    """Remove the kernel's connection file, unless another kernel (another
    process given the same path) has written its own there since.  A file
    a launcher wrote is the launcher's: it gets back what the launcher
    wrote (a restart launches the next host with it)."""
    try:
        current = read_connection_file(path)
    except ConnectionFileError:
        if launcher is None and path.exists():  # unreadable: remove what is there
            remove_quietly(path)
        return
    if current.get("key") != key:
        return
    if launcher is None:
        remove_quietly(path)
    elif current != launcher:
        try:
            write_connection_file(path, launcher)
        except OSError as exc:
            log.warning("zembed: could not give %s back to its launcher: %s", path, exc)


def served_fields(launcher: dict[str, Any] | None, ours: dict[str, Any]) -> dict[str, Any]:
    """The connection file to write: ours, with a launcher's fields kept as it wrote them."""
    if launcher is None:
        return ours
    return {**ours, **launcher, "zembed": ours["zembed"]}
