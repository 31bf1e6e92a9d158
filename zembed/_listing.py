"""Listing kernels for people and scripts: ``zembed list`` and ``zconsole --list``.

Output only; finding and probing the kernels is ``_discovery``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ._connection import runtime_dir
from ._discovery import clean, describe, list_kernels


def list_command(args: argparse.Namespace) -> int:
    """``zembed list [NAME] [--clean] [--json]`` (and ``zconsole --list``): print the kernels."""
    spec = getattr(args, "name", None)

    if args.clean:
        removed = clean(timeout=args.timeout)
        for record in removed:
            print(f"removed {record.connection_file} ({record.app or 'kernel'}, pid {record.pid or '-'}: dead)")
        if not removed:
            print("no dead kernels")
    records = list_kernels(timeout=args.timeout, name=spec)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "connection_file": str(r.connection_file),
                        "app": r.app,
                        "pid": r.pid,
                        "state": r.state,
                        "age_seconds": round(r.age_seconds, 1),
                        "host_busy_seconds": r.busy_seconds,
                        "kernel_name": r.info.get("kernel_name"),
                        "cluster": r.cluster,
                        "matched_by": r.match(spec) if spec is not None else None,
                    }
                    for r in records
                ],
                indent=2,
            )
        )
        return 0
    if not records:
        print(f"no kernels{' matching ' + repr(spec) if spec else ''} in {runtime_dir()}")
        return 0
    print(f"{'app':<20} {'pid':>8} {'age':>6}  {'state':<10} file")
    for record in records:
        print(describe(record))
    return 0


@contextmanager
def closed_pipe_is_quiet() -> Iterator[None]:
    """``zembed list | head -2``: the reader left; stop printing, no traceback.
    (Python's documented recipe: point stdout at devnull so the flush at
    exit does not fail again.)"""
    try:
        yield
        sys.stdout.flush()  # here, not at exit: a full pipe buffer fails at the last flush
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        sys.exit(141)  # 128 + SIGPIPE, what a shell reports for a writer whose reader left
