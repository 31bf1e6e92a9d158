"""A real terminal for console tests: tmux on a private server socket.

The test types keys (``type``, ``press``) and reads the rendered screen
(``screen``), as a user would; ``wait_for`` returns as soon as the screen
shows what is expected, and fails with the screen in the message.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence


class Terminal:
    def __init__(self, command: Sequence[str], env: dict[str, str] | None = None, size: tuple[int, int] = (120, 40)):
        if shutil.which("tmux") is None:
            raise RuntimeError("the console tests need tmux: apt-get install tmux (.ci/run installs it)")
        self.socket = f"zembed-test-{uuid.uuid4().hex[:10]}"
        self.env = dict(env or {})
        environment = {**os.environ, **self.env, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm-256color"}
        environment.pop("TMUX", None)
        # The command runs in a shell that keeps the pane open after it exits, to read its last words.
        shell_command = f'{shlex.join(command)}; echo "[exit $?]"; sleep 600'
        self._tmux("new-session", "-d", "-x", str(size[0]), "-y", str(size[1]), shell_command, env=environment)
        self._tmux("set-option", "-g", "history-limit", "5000")
        self.pid = int(self._tmux("display-message", "-p", "#{pane_pid}").strip())

    def _tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, env=env, timeout=10, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"tmux {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def type(self, text: str) -> None:
        """Type text literally (no key names)."""
        self._tmux("send-keys", "-l", text)

    def press(self, *keys: str) -> None:
        """Press keys by tmux name: Enter, Tab, C-c, C-d, Up, C-r, Escape..."""
        self._tmux("send-keys", *keys)

    def line(self, text: str) -> None:
        """Type a line and press Enter."""
        self.type(text)
        self.press("Enter")

    def screen(self, scrollback: bool = True, escapes: bool = False) -> str:
        """The screen's text (with scrollback), wrapped lines joined, trailing
        blanks of each line dropped; ``escapes`` keeps the colour codes."""
        args = ["capture-pane", "-p", "-J"] + (["-S", "-"] if scrollback else []) + (["-e"] if escapes else [])
        return "\n".join(line.rstrip() for line in self._tmux(*args).split("\n"))

    def wait_for(self, pattern: str, timeout: float = 10.0, after: int = 0) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) shows on screen, past character ``after``."""
        compiled = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            match = compiled.search(screen, after)
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not on screen within {timeout:g} s; the screen:\n{screen}")
            time.sleep(0.05)  # the screen offers nothing to block on: poll it

    def mark(self) -> int:
        """Where the current last line (the prompt) starts: ``wait_for(after=mark)``
        looks only at what is shown from now on."""
        text = self.screen().rstrip("\n")
        return text.rfind("\n") + 1

    def close(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10, check=False)
