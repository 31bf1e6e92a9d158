"""``python -m zjupyter`` (and ``zembed kernelspec|relay|lab|notebook``)."""

from __future__ import annotations

import argparse
import importlib.util
import sys

from zembed.frontend import ConnectionFileError


def _need(module: str, extra: str) -> bool:
    if importlib.util.find_spec(module) is None:
        print(f"zembed: this needs {module}: pip install 'zembed[{extra}]'", file=sys.stderr)
        return False
    return True


def kernelspec_command(args: argparse.Namespace) -> int:
    if not _need("jupyter_client", "jupyter"):
        return 2
    from . import kernelspec

    if args.action == "list":
        specs = kernelspec.installed()
        if not specs:
            print("no zembed kernelspecs installed (zembed kernelspec install APP adds one)")
        for name, entry in sorted(specs.items()):
            meta = entry["spec"]["metadata"][kernelspec.METADATA_KEY]
            what = f"relay to {meta.get('app')}" if meta.get("kind") == "relay" else f"launch {meta.get('command')}"
            print(f"{name:<28} {what:<40} {entry['resource_dir']}")
        return 0
    if args.action == "remove":
        try:
            print(f"removed {kernelspec.remove(args.name)}")
        except ConnectionFileError as exc:
            print(f"zembed: {exc}", file=sys.stderr)
            return 1
        return 0
    command = list(getattr(args, "tail", None) or [])
    if command and not args.launch:
        print(f"zembed: unexpected -- {' '.join(command)}: a host command is for --launch", file=sys.stderr)
        return 2
    try:
        if args.launch:
            spec = kernelspec.launch_spec(args.app, command, args.display_name)
        else:
            spec = kernelspec.relay_spec(args.app, args.display_name, forward_shutdown=args.forward_shutdown)
    except ValueError as exc:
        print(f"zembed: {exc}", file=sys.stderr)
        return 2
    name = args.name or kernelspec.spec_name(args.app)
    prefix = sys.prefix if args.sys_prefix else args.prefix
    try:
        folder = kernelspec.install(spec, name, user=args.user, prefix=prefix)
    except (OSError, ValueError) as exc:
        print(f"zembed: cannot install kernelspec {name!r}: {exc}", file=sys.stderr)
        return 1
    print(f"installed kernelspec {name!r} ({spec['display_name']}) in {folder}")
    return 0


def relay_command(args: argparse.Namespace) -> int:
    from .relay import main as relay_main

    return relay_main(args.extra)


def lab_command(args: argparse.Namespace) -> int:
    if not _need("jupyter_client", "lab"):
        return 2
    from .lab import main as lab_main

    return lab_main(args.which, args.extra)


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The Jupyter commands, on ``zembed``'s parser and on ``python -m zjupyter``'s."""
    spec = commands.add_parser("kernelspec", help="install, list or remove kernelspecs for zembed hosts")
    actions = spec.add_subparsers(dest="action", required=True)
    install = actions.add_parser("install", help="a kernelspec that attaches to app APP's running host")
    install.add_argument("app", help="the host's app name")
    install.add_argument("--name", help="kernelspec name (default: zembed-APP)")
    install.add_argument("--display-name", help="what the frontend shows (default: 'APP (zembed)')")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for this user only")
    where.add_argument("--sys-prefix", action="store_true", help="install into this Python's prefix (its venv)")
    where.add_argument("--prefix", help="install under this prefix")
    install.add_argument(
        "--forward-shutdown", action="store_true", help="'shut down kernel' also asks the host's kernel to shut down"
    )
    install.add_argument(
        "--launch",
        action="store_true",
        help="instead of attaching to a running host, start the host command given after -- as the kernel",
    )
    install.set_defaults(run=kernelspec_command)
    listing = actions.add_parser("list", help="the zembed kernelspecs installed")
    listing.set_defaults(run=kernelspec_command)
    removal = actions.add_parser("remove", help="remove a zembed kernelspec")
    removal.add_argument("name")
    removal.set_defaults(run=kernelspec_command)

    relay = commands.add_parser(  # its --help is the relay's own: every argument is passed on
        "relay", help="serve a running host as a Jupyter kernel: relay APP -f FILE (kernelspecs start this)",
        add_help=False,
    )  # fmt: skip
    relay.set_defaults(run=relay_command, takes_extra=True)

    for which in ("lab", "notebook"):
        server = commands.add_parser(which, help=f"start Jupyter{'Lab' if which == 'lab' else ' Notebook'} "
                                     "with every live host offered as a kernel", add_help=False)  # fmt: skip
        server.set_defaults(run=lab_command, which=which, takes_extra=True)  # the rest goes to the server


def split_tail(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """``(before --, after --)``: argparse's own ``--`` handling does not
    reach into subcommands, so a host command is split off first."""
    if "--" not in argv:
        return argv, None
    at = argv.index("--")
    return argv[:at], argv[at + 1 :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zjupyter", description="zembed hosts in Jupyter frontends.")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return int(run_parsed(parser, sys.argv[1:] if argv is None else argv))


def run_parsed(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    """Parse and run, the way both ``zembed`` and ``python -m zjupyter`` do:
    a host command after ``--`` is ``args.tail``; commands that pass their
    arguments on (``relay``, ``lab``, ``notebook``) get the rest as ``args.extra``."""
    before, tail = split_tail(argv)
    args, extra = parser.parse_known_args(before)
    if extra and not getattr(args, "takes_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.tail, args.extra = tail, extra
    return int(args.run(args))
