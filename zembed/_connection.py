"""Connection files: where they live, how they are named, written and read.

Jupyter's format (``shell_port``, ``iopub_port``, ``stdin_port``,
``control_port``, ``hb_port``, ``ip``, ``key``, ``transport``,
``signature_scheme``, ``kernel_name``) plus a ``zembed`` object with the app
name, pid and start time, which Jupyter clients ignore.

Files are named ``kernel-zembed-<app>-<pid>.json`` in Jupyter's runtime
directory, so ``jupyter console --existing`` (which looks for
``kernel-*.json`` and for substrings) finds zembed kernels too.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from ._errors import ConnectionFileError

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
    """The app name as it appears in file names: letters, digits, ``._-``."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    return cleaned or "app"


def default_file_name(app: str, pid: int | None = None) -> str:
    return f"kernel-zembed-{safe_app_name(app)}-{os.getpid() if pid is None else pid}.json"


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` as 0700 if it does not exist (parents as needed)."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask


def write_connection_file(path: Path, info: dict[str, Any]) -> None:
    """Write ``info`` atomically, readable by the owner only (0600).

    The data goes to a private temporary file in the same directory, which
    is then renamed over ``path``: a client never reads half a file.
    """
    ensure_private_dir(path.parent)
    tmp = path.parent / f".tmp-{os.urandom(8).hex()}.json"
    # O_EXCL: never follow or reuse an existing file; 0600 from the start.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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
    return info


def address(info: dict[str, Any], channel: str) -> str:
    """The ZeroMQ endpoint of ``channel`` in connection ``info``."""
    if info["transport"] == "ipc":
        return f"ipc://{info['ip']}-{info[f'{channel}_port']}"
    return f"{info['transport']}://{info['ip']}:{info[f'{channel}_port']}"


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


def remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
