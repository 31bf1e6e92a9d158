"""Kernel options: one traitlets trait per option, each with its help.

Sources, later ones winning: the defaults below, a config file, environment
variables, then the keyword arguments of ``start_kernel``.

- Config file: ``$ZEMBED_CONFIG`` if set, else
  ``$XDG_CONFIG_HOME/zembed/zembed_config.py`` or ``.json`` (``~/.config``
  when ``XDG_CONFIG_HOME`` is unset).  It sets ``c.KernelConfig.<option>``.
- Environment: ``ZEMBED_<OPTION>`` in upper case, e.g. ``ZEMBED_IP``.

The kernel itself takes the resolved plain values; traitlets stays here.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Collection
from pathlib import Path
from typing import Any

from traitlets import Bool, Enum, Float, HasTraits, Int, TraitError, Unicode, validate

from ._errors import UsageError

ENV_PREFIX = "ZEMBED_"
MAX_NAME_LENGTH = 128


class KernelConfig(HasTraits):
    """Options of an embedded kernel.

    A plain ``HasTraits``: ``traitlets.config`` (with its Application,
    argparse and logging.config) is imported only when a config file exists,
    which keeps a kernel's start-up short.
    """

    name = Unicode(
        "",
        help="App name: part of the connection file name, shown to clients, used by "
        "`zconsole --existing NAME` (and `jupyter console --existing NAME`) to find this host; its "
        "history and crash reports are kept under it. Empty: the host program's name (its script, "
        "module or executable, e.g. 'myapp' for `python myapp.py`).",
    ).tag(config=True)
    loop = Unicode(
        "auto",
        help="Host event loop to run user code on: 'auto' (what runs or exists on the calling thread: "
        "asyncio, a Qt application, a Tk root, else poll), 'asyncio', 'qt', 'tk' or 'poll'. From Python you "
        "may also pass a loop object, a QApplication, a Tk root or a call-soon callable.",
    ).tag(config=True)
    ip = Unicode("127.0.0.1", help="Address the sockets bind to (tcp transport).").tag(config=True)
    transport = Enum(["tcp", "ipc"], "tcp", help="ZeroMQ transport: 'tcp' or 'ipc' (Unix sockets).").tag(config=True)
    connection_dir = Unicode(
        "",
        help="Directory for connection files; empty means Jupyter's runtime dir "
        "($JUPYTER_RUNTIME_DIR, else Jupyter's data dir + /runtime).",
    ).tag(config=True)
    connection_file = Unicode(
        "",
        help="Exact connection file path; empty means CONNECTION_DIR/kernel-zembed-NAME-PID.json. "
        "If a launcher (a Jupyter KernelManager) wrote ports and a key there, the kernel serves exactly those.",
    ).tag(config=True)
    shell_port = Int(0, help="Shell port (0: pick a free one).").tag(config=True)
    iopub_port = Int(0, help="IOPub port (0: pick a free one).").tag(config=True)
    stdin_port = Int(0, help="Stdin port (0: pick a free one).").tag(config=True)
    control_port = Int(0, help="Control port (0: pick a free one).").tag(config=True)
    hb_port = Int(0, help="Heartbeat port (0: pick a free one).").tag(config=True)
    max_message_bytes = Int(
        64 * 1024 * 1024,
        help="Largest incoming frame accepted, in bytes; a peer sending more is disconnected "
        "by ZeroMQ and the message is never parsed.",
    ).tag(config=True)
    stream_flush_interval = Float(
        0.05, help="Seconds between flushes of captured stdout/stderr while a cell runs."
    ).tag(config=True)
    poll_budget = Float(
        0.005,
        help="Seconds of kernel work one poll() or loop callback may take before it "
        "yields back to the host (a cell that runs longer is never cut).",
    ).tag(config=True)
    encryption = Enum(
        ["auto", "curve", "none"],
        "auto",
        help="CurveZMQ encryption of all five sockets: 'auto' (on when binding a non-loopback "
        "address), 'curve' (always, tcp only) or 'none'. The keys go in the connection file "
        "(curve_publickey, curve_secretkey), where jupyter_client 8.9+ finds them.",
    ).tag(config=True)
    allow_insecure_remote = Bool(
        False,
        help="Allow binding a non-loopback address WITHOUT encryption (encryption='none'). Anyone "
        "who reaches the iopub port could read all output, so this is refused unless set; "
        "a warning is logged when it is.",
    ).tag(config=True)
    data_dir = Unicode(
        "",
        help="Where history and crash reports are kept, per app name; empty means "
        "$XDG_DATA_HOME/zembed (~/.local/share/zembed; the platform's data dir elsewhere).",
    ).tag(config=True)
    persistent_history = Bool(
        True, help="Keep the app's input history in DATA_DIR/apps/NAME/history.sqlite (else in memory)."
    ).tag(config=True)
    history_limit = Int(100_000, help="Entries of history kept per app name; the oldest go first.").tag(config=True)
    crash_recovery = Bool(
        True,
        help="Keep a run record and a crash log (faulthandler, all threads) so that the next start "
        "of the app, zconsole and `zembed crashes` can say how and in which cell a host died.",
    ).tag(config=True)

    cluster = Unicode(
        "",
        help="Join this ipyparallel cluster as an engine at start: the path of the controller's "
        "ipcontroller-engine.json (see Many hosts). Empty: no cluster.",
    ).tag(config=True)

    # Set by load_config: the name was not given, so it came from the program's name.
    name_derived = False

    @validate("name")
    def _check_name(self, proposal: Any) -> str:
        value = str(proposal["value"])
        if not value:
            return value  # the program's name, filled in by load_config
        if not value.strip():
            raise TraitError("name must not be blank")
        if len(value) > MAX_NAME_LENGTH:
            raise TraitError(f"name is {len(value)} characters long; at most {MAX_NAME_LENGTH} are allowed")
        if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in value):
            raise TraitError(f"name {value!r} holds control characters")
        return value

    @validate("history_limit")
    def _check_history_limit(self, proposal: Any) -> int:
        if proposal["value"] < 1:
            raise TraitError("history_limit must be at least 1 (use persistent_history=False to keep it in memory)")
        return int(proposal["value"])

    @validate("stream_flush_interval", "poll_budget")
    def _check_positive(self, proposal: Any) -> float:
        if proposal["value"] <= 0:
            raise TraitError(f"{proposal['trait'].name} must be positive")
        return float(proposal["value"])

    @validate("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
    def _check_port(self, proposal: Any) -> int:
        if not 0 <= proposal["value"] <= 65535:
            raise TraitError(f"{proposal['trait'].name} must be between 0 and 65535")
        return int(proposal["value"])

    def connection_path(self, taken: Collection[Path] = ()) -> Path:
        """The connection file to write: the one given, else the first
        default name not in ``taken`` (the files of this process's kernels)."""
        from ._connection import default_file_name, runtime_dir

        if self.connection_file:
            return Path(self.connection_file).expanduser().absolute()
        directory = (Path(self.connection_dir).expanduser() if self.connection_dir else runtime_dir()).absolute()
        serial = 1
        while (path := directory / default_file_name(self.name, serial=serial)) in taken:
            serial += 1
        return path


def program_name() -> str:
    """The host program's name, the default app name: the module run with
    ``-m`` (``pkg.tool``), else the script's stem (``myapp`` for
    ``python myapp.py``), else the executable's (``blender``, ``python3``)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = ""
    if spec is not None and getattr(spec, "name", None):
        name = str(spec.name).removesuffix(".__main__")
    elif sys.argv and sys.argv[0] not in ("", "-c", "-"):
        name = Path(sys.argv[0]).stem
    if not name or name == "__main__":
        name = Path(sys.executable or "python").stem
    cleaned = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Cs")).strip()
    return cleaned[:MAX_NAME_LENGTH] or "python"


def option_names() -> list[str]:
    return sorted(KernelConfig.class_own_traits(config=True))


def config_file_path() -> Path | None:
    """The config file to read, or None when there is none."""
    explicit = os.environ.get("ZEMBED_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise UsageError(f"ZEMBED_CONFIG names {path}, which is not a file")
        return path
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "zembed"
    for candidate in (base / "zembed_config.py", base / "zembed_config.json"):
        if candidate.is_file():
            return candidate
    return None


Options = dict[str, Any]


def _file_config(path: Path | None) -> Options:
    """``c.KernelConfig.*`` settings of the config file, as a plain dict."""
    if path is None:
        return {}
    from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

    loader_class = JSONFileConfigLoader if path.suffix == ".json" else PyFileConfigLoader
    try:
        section = dict(loader_class(path.name, str(path.parent)).load_config().get("KernelConfig", {}))
    except Exception as exc:  # a config file is user code: say which file broke
        raise UsageError(f"cannot load zembed config file {path}: {exc}") from exc
    unknown = sorted(set(section) - set(option_names()))
    if unknown:
        raise UsageError(
            f"{path} sets unknown option(s) {', '.join(unknown)}; options are: {', '.join(option_names())}"
        )
    return section


def _env_config(environ: dict[str, str]) -> Options:
    options: Options = {}
    traits = KernelConfig.class_own_traits(config=True)
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key == "ZEMBED_CONFIG":
            continue
        option = key[len(ENV_PREFIX) :].lower()
        if option not in traits:
            continue
        try:
            options[option] = traits[option].from_string(raw)
        except (TraitError, ValueError) as exc:
            raise UsageError(f"environment variable {key}={raw!r} is not a valid {option}: {exc}") from None
    return options


def load_config(overrides: Options, environ: dict[str, str] | None = None) -> KernelConfig:
    """Merge defaults, config file, environment and ``overrides``, in that order."""
    environ = dict(os.environ if environ is None else environ)
    unknown = sorted(set(overrides) - set(option_names()))
    if unknown:
        raise UsageError(f"unknown option(s) {', '.join(unknown)}; options are: {', '.join(option_names())}")
    path = config_file_path()
    layers = [(f"config file {path}", _file_config(path)), ("environment", _env_config(environ)), ("", overrides)]
    result = KernelConfig()
    for source, options in layers:
        for key, value in options.items():
            try:
                setattr(result, key, value)
            except TraitError as exc:
                raise UsageError(f"{exc}" + (f" (from the {source})" if source else "")) from None
    if not result.name:
        result.name = program_name()
        result.name_derived = True
    return result
