"""Connection files: where they live, how they are named, written and read.

Jupyter's format (``shell_port``, ``iopub_port``, ``stdin_port``,
``control_port``, ``hb_port``, ``ip``, ``key``, ``transport``,
``signature_scheme``, ``kernel_name``) plus a ``zembed`` object with the app
name, pid and start time, which Jupyter clients ignore.

Files are named ``kernel-zembed-<app>-<pid>.json`` in Jupyter's runtime
directory (a second kernel of the app in the same process adds ``-2``), so
``jupyter console --existing`` (which looks for ``kernel-*.json`` and for
substrings) finds zembed kernels too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import unicodedata
from pathlib import Path
from typing import Any

from ._errors import ConnectionFileError
from ._private import write_private

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
REQUIRED_KEYS = ("ip", "key", "transport", *(f"{c}_port" for c in CHANNELS))


def jupyter_data_dir() -> Path:
    """Jupyter's data directory, following jupyter_core's rules."""
    if os.environ.get("JUPYTER_DATA_DIR"):
        return Path(os.environ["JUPYTER_DATA_DIR"])
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Jupyter"
    if os.name == "nt":
        appdata = os.environ.get("APPDATA")
        return Path(appdata) / "jupyter" if appdata else home / ".jupyter" / "data"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else home / ".local" / "share") / "jupyter"


def zembed_data_dir() -> Path:
    """Where zembed keeps what outlives a process (history, crash reports):
    ``$ZEMBED_DATA_DIR``, else the platform's user data dir + ``/zembed``."""
    if os.environ.get("ZEMBED_DATA_DIR"):
        return Path(os.environ["ZEMBED_DATA_DIR"]).expanduser()
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "zembed"
    if os.name == "nt":
        local = os.environ.get("LOCALAPPDATA")
        return Path(local) / "zembed" if local else home / "AppData" / "Local" / "zembed"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else home / ".local" / "share") / "zembed"


def app_data_dir(app: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder of one app name: its history, runs and crash reports."""
    base = Path(data_dir).expanduser() if data_dir else zembed_data_dir()
    return base.absolute() / "apps" / safe_app_name(app)


def runtime_dir() -> Path:
    """``$JUPYTER_RUNTIME_DIR``, else Jupyter's data dir + ``/runtime``."""
    env = os.environ.get("JUPYTER_RUNTIME_DIR")
    return Path(env) if env else jupyter_data_dir() / "runtime"


def safe_app_name(name: str) -> str:
    """The app name as it appears in file and folder names: letters and
    digits of any script, ``._-``, at most 60 bytes.  A name that had to be
    changed to fit gets a short hash of itself, so two names never share
    one folder (``a/b`` and ``a_b``, or two long names alike at the start)."""
    cleaned = re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFC", name)).strip("._-")
    if cleaned == name and len(cleaned.encode("utf-8")) <= 60:
        return cleaned
    short = cleaned.encode("utf-8")[:48].decode("utf-8", "ignore").rstrip("._-")
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{short}-{digest}" if short else f"app-{digest}"


def default_file_name(app: str, pid: int | None = None, serial: int = 1) -> str:
    """``kernel-zembed-<app>-<pid>.json``; ``serial`` 2 and up add ``-2``...
    for a kernel of the same app started while the first still runs."""
    suffix = "" if serial == 1 else f"-{serial}"
    return f"kernel-zembed-{safe_app_name(app)}-{os.getpid() if pid is None else pid}{suffix}.json"


def write_connection_file(path: Path, info: dict[str, Any]) -> None:
    """Write ``info`` atomically, readable by the owner only (0600, in a
    0700 folder if zembed makes it): a client never reads half a file."""
    write_private(path, (json.dumps(info, indent=2) + "\n").encode("utf-8"))


def read_connection_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a connection file; raise ``ConnectionFileError``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConnectionFileError(f"connection file not found: {p}") from None
    except OSError as exc:
        raise ConnectionFileError(f"cannot read connection file {p}: {exc.strerror}") from None
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise ConnectionFileError(f"{p} is not JSON: {exc}") from None
    if not isinstance(info, dict):
        raise ConnectionFileError(f"{p} does not hold a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in info]
    if missing:
        raise ConnectionFileError(f"{p} lacks {', '.join(missing)}: not a Jupyter connection file")
    wrong = [f"{c}_port" for c in CHANNELS if not _is_port(info[f"{c}_port"])]
    wrong += [k for k in ("ip", "key") if not isinstance(info[k], str)]
    if info["transport"] not in ("tcp", "ipc"):
        wrong.append("transport")
    if wrong:
        raise ConnectionFileError(f"{p} has invalid {', '.join(wrong)}: not a usable connection file")
    return info


def _is_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536


def address(info: dict[str, Any], channel: str) -> str:
    """The ZeroMQ endpoint of ``channel`` in connection ``info``."""
    if info["transport"] == "ipc":
        return f"ipc://{info['ip']}-{info[f'{channel}_port']}"
    return f"{info['transport']}://{info['ip']}:{info[f'{channel}_port']}"


# A client's socket per channel (Jupyter's client side): DEALERs for the
# request channels, SUB for iopub, REQ for the heartbeat.
CLIENT_SOCKET_TYPES = {"shell": "DEALER", "control": "DEALER", "stdin": "DEALER", "iopub": "SUB", "hb": "REQ"}


def open_client_sockets(
    context: Any, info: dict[str, Any], identity: bytes, channels: tuple[str, ...] = CHANNELS
) -> dict[str, Any]:
    """Connected client sockets for ``channels`` of the kernel in ``info``
    (any ``zmq`` or ``zmq.asyncio`` context): no linger, iopub subscribed to
    everything, shell and stdin sharing ``identity`` (the kernel sends a
    cell's ``input_request`` to the identity that sent the cell)."""
    import zmq

    sockets: dict[str, Any] = {}
    try:
        for channel in channels:
            sock = context.socket(getattr(zmq, CLIENT_SOCKET_TYPES[channel]))
            sockets[channel] = sock
            sock.linger = 0
            if channel in ("shell", "stdin"):
                sock.setsockopt(zmq.IDENTITY, identity)
            if channel == "iopub":
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            connect(sock, info, channel)
    except BaseException:
        for sock in sockets.values():
            sock.close()
        raise
    return sockets


def connect(sock: Any, info: dict[str, Any], channel: str) -> None:
    """Connect a client's ZeroMQ socket to ``channel`` of the kernel in
    ``info``; as a CurveZMQ client (a fresh keypair of its own, the
    kernel's public key as the server key) when the kernel is encrypted."""
    server_key = info.get("curve_publickey")
    if server_key:
        import zmq

        public, secret = zmq.curve_keypair()
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_serverkey = server_key.encode("ascii") if isinstance(server_key, str) else server_key
    sock.connect(address(info, channel))
