"""The ``zconsole`` command: find the kernel meant, then run the console.

Exit codes: 0 after leaving the console, 2 when there is nothing to attach
to (the message lists what exists) or no terminal to run in.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from zembed.frontend import ConnectionFileError, KernelRecord, __version__, resolve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zconsole",
        description="A terminal console attached to a running zembed kernel (or any Jupyter kernel).",
        epilog="Without options: attach to the newest live kernel.",
    )
    parser.add_argument(
        "--existing",
        nargs="?",
        const="",
        metavar="NAME_OR_FILE",
        help="attach to the newest live kernel, or the newest one whose app name or file name matches NAME, "
        "or to the connection file FILE",
    )
    parser.add_argument("--list", action="store_true", help="list kernels: app, pid, age, live/busy/dead")
    parser.add_argument("--clean", action="store_true", help="with --list: remove the files of dead kernels first")
    parser.add_argument("--json", action="store_true", help="with --list: print JSON")
    parser.add_argument("--wait", action="store_true", help="if no such kernel is live yet, wait for it to start")
    parser.add_argument(
        "--history-file",
        type=Path,
        help="where inputs are kept (default: $ZCONSOLE_HISTORY, else $XDG_DATA_HOME/zconsole/history.jsonl)",
    )
    parser.add_argument("--no-history-file", action="store_true", help="keep history in memory only")
    parser.add_argument("--no-color", action="store_true", help="no colours (also: NO_COLOR set in the environment)")
    parser.add_argument("--version", action="version", version=f"zconsole {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.clean and not args.list:
        _parser().error("--clean goes with --list")
    if args.list:
        from zembed.frontend import closed_pipe_is_quiet, list_command

        with closed_pipe_is_quiet():
            return list_command(argparse.Namespace(clean=args.clean, json=args.json, timeout=0.5, name=None))
    spec = args.existing or None
    try:
        record = resolve(spec)
    except ConnectionFileError as exc:
        if not args.wait:
            print(f"zconsole: {exc}", file=sys.stderr)
            if "no kernel connection files" in str(exc):
                print("Start one with `zembed demo`, or call zembed.start_kernel() in your app.", file=sys.stderr)
            return 2
        record = KernelRecord(Path(spec or "any kernel"), {}, 0.0, state="dead")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(
            "zconsole: needs a terminal; to run code from a script use `zembed run NAME script.py` "
            "or `zembed exec NAME -c CODE`",
            file=sys.stderr,
        )
        return 2
    color = not args.no_color and "NO_COLOR" not in os.environ
    return asyncio.run(_run(record, args, color, spec))


async def _run(record: KernelRecord, args: argparse.Namespace, color: bool, spec: str | None) -> int:
    from ._console import Console
    from ._console_history import ConsoleHistory, default_history_file

    history_file = None if args.no_history_file else (args.history_file or default_history_file())
    history = ConsoleHistory(history_file, record.app or str(record.connection_file.name))
    if history.problem:
        print(f"zconsole: {history.problem}; history stays in memory", file=sys.stderr)
    wait_for = (spec or "") if record.state == "dead" else None
    console = Console(record, history, color=color, wait_for=wait_for)
    return await console.run()
