"""Where a kernel is reached, and who may bind there.

Owns the Curve policy for an address (encrypt a non-loopback bind, refuse
an unencrypted one unless the host accepts the risk) and the connection
files of this process's kernels: each running kernel claims its own (two
given one path would make the first unreachable), and a stopping kernel
removes only a file that still holds its key.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import zmq

from ._config import KernelConfig
from ._connection import read_connection_file
from ._errors import ConnectionFileError, UsageError
from ._private import remove_quietly

log = logging.getLogger("zembed")

_files_in_use: set[Path] = set()
_files_lock = threading.Lock()


def curve_keypair_for(config: KernelConfig) -> tuple[bytes, bytes] | None:
    """The Curve keypair to serve with, or None; refuse unsafe binds."""
    loopback = config.transport != "tcp" or config.ip in ("localhost", "::1") or config.ip.startswith("127.")
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
            f"refusing to bind {config.ip!r} without encryption: anyone who reaches the iopub port could "
            "read all output. Use encryption='auto' or 'curve' (CurveZMQ), or bind loopback and use an "
            "SSH tunnel, or pass allow_insecure_remote=True to accept the risk."
        )
    log.warning(
        "zembed: WARNING: binding %s WITHOUT encryption (allow_insecure_remote): everything the kernel "
        "sends, and every cell sent to it, is readable by anyone on the network",
        config.ip,
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


def remove_own_connection_file(path: Path, key: str) -> None:
    """Remove the kernel's connection file, unless another kernel (another
    process given the same path) has written its own there since."""
    try:
        found = read_connection_file(path).get("key")
    except ConnectionFileError:
        found = None  # missing or unreadable: remove what is there, if anything
        if not path.exists():
            return
    if found is None or found == key:
        remove_quietly(path)
