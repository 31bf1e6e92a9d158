"""Where the console's text goes: the terminal, in order, above the prompt
while one is up, or through a pager when it is longer than the screen."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable

from prompt_toolkit.application import run_in_terminal


class Screen:
    def __init__(self, prompt_is_up: Callable[[], bool]) -> None:
        self._prompt_is_up = prompt_is_up
        self._pending: list[str] = []  # text waiting to be printed above the prompt
        self.at_line_start = True

    def write(self, text: str) -> None:
        """While the prompt is up, text is printed above it (prompt_toolkit
        erases the prompt, prints, and redraws the line being typed), in
        batches; otherwise straight away."""
        if not text:
            return
        if not self._prompt_is_up() and not self._pending:
            self._out(text)
            return
        self._pending.append(text)
        if len(self._pending) == 1:
            run_in_terminal(self._flush_pending, in_executor=False)

    def _flush_pending(self) -> None:
        text, self._pending = "".join(self._pending), []
        if self._prompt_is_up() and not text.endswith("\n"):
            text += "\n"  # a partial line would run into the redrawn prompt
        self._out(text)

    def _out(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()
        self.at_line_start = text.endswith("\n")

    def page(self, text: str) -> None:
        """Print, or hand to ``$PAGER`` (default ``less -R``) when longer than the screen."""
        text = text.rstrip("\n") + "\n"
        rows = shutil.get_terminal_size().lines
        if sys.stdout.isatty() and text.count("\n") > rows - 2:
            command = shlex.split(os.environ.get("PAGER") or "less -R")
            with contextlib.suppress(OSError):
                subprocess.run(command, input=text.encode("utf-8", "replace"), check=False)
                return
        self.write(text)
