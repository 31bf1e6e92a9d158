"""The ``zembed`` command.

``zembed demo`` starts the demo host in its own process and attaches
zconsole to it in this terminal; leaving the console stops the demo host.
``zembed launch FILE -- CMD`` runs a host command as a Jupyter kernel (a
kernelspec's argv); ``kernelspec``, ``relay``, ``lab`` and ``notebook`` are
zjupyter's (the Jupyter frontends), named here so one command has them all.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from ._listing import closed_pipe_is_quiet, list_command
from ._version import __version__


def _console_command() -> list[str] | None:
    """How to run zconsole here, or None when its extra is not installed."""
    import importlib.util

    if importlib.util.find_spec("prompt_toolkit") is None or importlib.util.find_spec("zconsole") is None:
        return None
    return [sys.executable, "-m", "zconsole"]


def _ignore(signum: int, frame: object) -> None:
    """A handler that does nothing.  Not ``SIG_IGN``: an ignored signal stays
    ignored in every child started later (the restarted demo host would
    ignore the SIGINT that asks it to stop), a handler is reset at exec."""


def _run_console(command: list[str]) -> int:
    """Run the console in the foreground; Ctrl-C is the console's to handle."""
    console = subprocess.Popen(command)
    previous = signal.signal(signal.SIGINT, _ignore)  # this launcher only, after the child started
    try:
        return console.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


class _DemoHost:
    """The demo host process, restarted RESTART_AFTER seconds after it dies
    (``app.crash()``), so the console's re-attach can be seen; a host of your
    own comes back when you restart it."""

    RESTART_AFTER = 2.0

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path  # the host's stderr (its log): never written over the console's prompt
        self.restarts = 0
        self._stopping = threading.Event()
        self.process = self._start()
        self._supervisor = threading.Thread(target=self._supervise, name="zembed-demo-supervisor", daemon=True)

    def _start(self) -> subprocess.Popen[str]:
        # Its own session: Ctrl-C in this terminal belongs to the console, and
        # must never reach the host (the point of a console in another process).
        from ._private import open_private

        with os.fdopen(open_private(self.log_path, os.O_WRONLY | os.O_APPEND), "ab") as log_file:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "zembed.demo",
                    "--announce",
                    "--name",
                    self.name,
                    "--parent-pid",
                    str(os.getpid()),
                ],
                stdout=subprocess.PIPE,
                stderr=log_file,
                stdin=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
        assert process.stdout is not None
        self.announcement = process.stdout.readline()
        # Keep reading what the host prints, so a chatty host never blocks on a full pipe.
        threading.Thread(target=process.stdout.read, name="zembed-demo-drain", daemon=True).start()
        return process

    def supervise(self) -> None:
        self._supervisor.start()

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            self.process.wait()
            if self._stopping.wait(self.RESTART_AFTER):
                return
            self.restarts += 1
            self.process = self._start()

    def stop(self) -> int | None:
        self._stopping.set()
        process = self.process
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # our own child: ask it to stop cleanly
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode


def demo(args: argparse.Namespace) -> int:
    from ._config import load_config
    from ._connection import app_data_dir
    from ._private import private_dir

    log_path = private_dir(app_data_dir(args.name, load_config({}).data_dir)) / "demo-host.log"
    host = _DemoHost(args.name, log_path)
    try:
        if not host.announcement:
            print(f"zembed demo: the demo host failed to start; its log: {log_path}", file=sys.stderr)
            return 1
        connection_file = json.loads(host.announcement)["connection_file"]
        print(f"zembed demo: host pid {host.process.pid} serving {connection_file}")
        print(f"zembed demo: the host's log goes to {log_path}")
        print(
            "Try:  app   app.world.particles[:3]   app.world.gravity = -2   %profile_host 3   "
            "app.collisions = False   app.busy(3)   app.crash()"
        )
        console = _console_command()
        if console is None or args.no_console:
            if console is None and not args.no_console:
                print("zembed demo: zconsole is not installed: pip install 'zembed[console]'", file=sys.stderr)
            print(
                f"Attach from another terminal with:\n  zconsole --existing {args.name}\n"
                "Ctrl-C here stops the demo host."
            )
            host.process.wait()
            return 0
        print(f"The demo restarts its host {host.RESTART_AFTER:g} s after it dies; the console re-attaches.")
        host.supervise()
        return _run_console([*console, "--existing", connection_file])
    except KeyboardInterrupt:
        return 130
    finally:
        code = host.stop()
        print(f"zembed demo: host stopped ({'exit ' + str(code) if code is not None else 'killed'})")


def crashes_command(args: argparse.Namespace) -> int:
    """List crash reports (every app, or NAME's in full); collect records of hosts that just died."""
    from ._config import load_config
    from ._connection import app_data_dir
    from ._errors import UsageError
    from ._recovery import collect, describe, full_text, reports

    try:
        data_dir = load_config({}).data_dir
    except UsageError as exc:
        print(f"zembed: {exc}", file=sys.stderr)
        return 2
    if args.name:
        app_dirs = [app_data_dir(args.name, data_dir)]
    else:
        apps = app_data_dir("x", data_dir).parent
        app_dirs = sorted(p for p in apps.iterdir() if p.is_dir()) if apps.is_dir() else []
    found = []
    for app_dir in app_dirs:
        collect(app_dir)
        found += reports(app_dir)
    found.sort(key=lambda r: str(r.get("last_seen", "")), reverse=True)
    if args.clear:
        for report in found:
            Path(report["file"]).unlink(missing_ok=True)
        print(f"removed {len(found)} crash report(s)")
        return 0
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        where = app_dirs[0] if args.name else app_data_dir("x", data_dir).parent
        print(f"no crash reports{' for ' + repr(args.name) if args.name else ''} (in {where})")
        return 0
    if not args.name:
        for report in found:
            print(describe(report))
        print(f"\n{len(found)} report(s); zembed crashes NAME shows one app's in full")
        return 0
    for report in found[: args.last]:
        print(full_text(report) + "\n")
    if len(found) > args.last:
        print(f"{len(found) - args.last} older report(s) (--last N shows more):")
        for report in found[args.last :]:
            print("  " + describe(report))
    return 0


def _run_code(target: str | None, code: str, timeout: float | None) -> int:
    """Run ``code`` in a host, streaming its output here; 0 ok, 1 error, 130 interrupted."""
    from ._client import RemoteError, connect
    from ._errors import ConnectionFileError

    def show(msg_type: str, content: dict) -> None:
        if msg_type == "stream":
            stream = sys.stderr if content.get("name") == "stderr" else sys.stdout
            stream.write(content.get("text", ""))
            stream.flush()
        elif msg_type in ("execute_result", "display_data"):
            print(content.get("data", {}).get("text/plain", ""), flush=True)

    try:
        client = connect(None if target == "-" else target)
    except (ConnectionFileError, TimeoutError) as exc:
        print(f"zembed: {exc}", file=sys.stderr)
        return 2
    with client:
        try:
            client.execute(code, timeout=float("inf") if timeout is None else timeout, on_output=show)
        except RemoteError as exc:
            print(exc, file=sys.stderr)
            return 130 if exc.ename == "KeyboardInterrupt" else 1
        except KeyboardInterrupt:
            print("zembed: interrupted; the remote code was interrupted too", file=sys.stderr)
            return 130
        except (TimeoutError, ConnectionError) as exc:
            print(f"zembed: {exc}", file=sys.stderr)
            return 1
    return 0


def exec_command(args: argparse.Namespace) -> int:
    return _run_code(args.name, args.code, args.timeout)


def run_command(args: argparse.Namespace) -> int:
    try:
        code = Path(args.script).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"zembed: cannot read {args.script}: {exc.strerror}", file=sys.stderr)
        return 2
    return _run_code(args.name, code, args.timeout)


def launch_command(args: argparse.Namespace) -> int:
    """Become the host command, with ``ZEMBED_CONNECTION_FILE`` naming the
    file the launcher wrote: the host's ``start_kernel`` serves exactly its
    ports and key.  The pid stays the launcher's child's (``exec``)."""
    command = list(args.tail or [])
    if not command:
        print("zembed launch: give the host's command after --: zembed launch FILE -- CMD ARGS...", file=sys.stderr)
        return 2
    env = {**os.environ, "ZEMBED_CONNECTION_FILE": str(Path(args.connection_file).absolute())}
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        print(f"zembed launch: cannot run {command[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        return 127
    return 0  # not reached: exec replaced this process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zembed", description="Embedded Jupyter kernels for host applications.")
    parser.add_argument("--version", action="version", version=f"zembed {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="start a demo host and attach a console to it")
    demo_parser.add_argument("--name", default="zembed-demo", help="app name of the demo host")
    demo_parser.add_argument("--no-console", action="store_true", help="only start the host and say how to attach")
    demo_parser.set_defaults(run=demo)
    list_parser = commands.add_parser("list", help="list kernels with their app, pid, age and state")
    list_parser.add_argument("name", nargs="?", help="only kernels of this app name, or whose file name contains it")
    list_parser.add_argument("--clean", action="store_true", help="first remove the connection files of dead kernels")
    list_parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    list_parser.add_argument("--timeout", type=float, default=0.5, help="seconds to wait for each heartbeat")
    list_parser.set_defaults(run=list_command)
    exec_parser = commands.add_parser("exec", help="run code in a host: zembed exec NAME -c CODE")
    exec_parser.add_argument("name", help="app name, connection file, or '-' for the newest live kernel")
    exec_parser.add_argument("-c", dest="code", required=True, help="the code to run")
    exec_parser.add_argument("--timeout", type=float, default=None, help="seconds to wait (default: no limit)")
    exec_parser.set_defaults(run=exec_command)
    run_parser = commands.add_parser("run", help="run a script in a host: zembed run NAME script.py")
    run_parser.add_argument("name", help="app name, connection file, or '-' for the newest live kernel")
    run_parser.add_argument("script", help="a Python file, run in the host's namespace")
    run_parser.add_argument("--timeout", type=float, default=None, help="seconds to wait (default: no limit)")
    run_parser.set_defaults(run=run_command)
    crashes_parser = commands.add_parser("crashes", help="how hosts ended badly: crash reports, newest first")
    crashes_parser.add_argument("name", nargs="?", help="an app name: its reports in full")
    crashes_parser.add_argument("--last", type=int, default=1, help="with NAME: how many reports to show in full")
    crashes_parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    crashes_parser.add_argument("--clear", action="store_true", help="remove the reports (of NAME, or all)")
    crashes_parser.set_defaults(run=crashes_command)
    launch_parser = commands.add_parser(
        "launch", help="run a host command as a Jupyter kernel: zembed launch FILE -- CMD ARGS (for kernelspecs)"
    )
    launch_parser.add_argument("connection_file", help="the connection file the launcher wrote ({connection_file})")
    launch_parser.set_defaults(run=launch_command)
    from zjupyter.cli import add_commands, run_parsed  # zjupyter ships with zembed, like zconsole

    add_commands(commands)
    with closed_pipe_is_quiet():
        return int(run_parsed(parser, sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
