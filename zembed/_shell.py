"""Shell commands from a cell: ``!cmd``, ``files = !ls``, ``%%bash``, ``%%sh``.

The command runs in a child process of its own session (so Ctrl-C in the
frontend ends the command, and no signal ever reaches the host's own
process group) with its output read as it comes and written to the cell's
stdout, where it streams like ``print``.  The host's thread waits in short
``select`` steps, so an interrupt is delivered between them.

``$name`` and ``{expression}`` in a ``!`` line are replaced from the
cell's namespace, as IPython does (``$$`` is a literal ``$``); what does
not resolve is left for the shell.
"""

from __future__ import annotations

import codecs
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
from typing import Any

_DOLLAR = re.compile(r"\$\$|\$\{(\w+)\}|\$(\w+)")
_BRACES = re.compile(r"(?<!\{)\{([^{}]+)\}(?!\})")
STOP_GRACE = 1.0  # seconds an interrupted command has between SIGTERM and SIGKILL


def expand(command: str, namespace: dict[str, Any]) -> str:
    """``$name``, ``${name}`` and ``{expression}`` from ``namespace``."""

    def dollar(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(2)
        return str(namespace[name]) if name in namespace else match.group(0)

    def braces(match: re.Match[str]) -> str:
        try:
            return str(eval(match.group(1), namespace))
        except Exception:  # not Python, or not defined: the shell's (``{a,b}``, ``${x}``)
            return match.group(0)

    return _DOLLAR.sub(dollar, _BRACES.sub(braces, command))


def run(command: str, *, capture: bool = False, shell: str | None = None) -> tuple[int, list[str]]:
    """Run ``command`` with ``shell`` (default ``/bin/sh``), streaming its
    output to ``sys.stdout``, or only collecting it with ``capture``;
    ``(exit status, output lines)``."""
    executable = shutil.which(shell) if shell else None
    if shell and executable is None:
        raise FileNotFoundError(f"{shell} is not installed here")
    child = subprocess.Popen(
        command,
        shell=True,
        executable=executable,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: an interrupt ends it, never the host
    )
    assert child.stdout is not None
    chunks: list[bytes] = []
    decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character may span two reads
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ)
    try:
        while True:
            if not selector.select(0.05):  # short steps: an interrupt is delivered between them
                continue
            data = os.read(child.stdout.fileno(), 65536)
            if not data:
                if not capture:
                    sys.stdout.write(decoder.decode(b"", final=True))
                break
            if capture:
                chunks.append(data)
            else:
                sys.stdout.write(decoder.decode(data))
        status = child.wait()
    except BaseException:  # KeyboardInterrupt from the frontend: end the command, then the cell
        _end(child)
        raise
    finally:
        selector.close()
        child.stdout.close()
    return status, b"".join(chunks).decode("utf-8", "replace").splitlines()


def _end(child: subprocess.Popen[bytes]) -> None:
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(child.pid, signum)  # the command's own group (start_new_session), not the host's
        except (ProcessLookupError, PermissionError):
            return
        try:
            child.wait(STOP_GRACE)
            return
        except subprocess.TimeoutExpired:
            continue
