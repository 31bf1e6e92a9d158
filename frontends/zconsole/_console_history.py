"""The console's input history: what this user typed (kept in a file, per
app, so it survives the console and the host), merged with the kernel's own
history when attaching (what was typed in earlier consoles or by other
clients of a host that is still running).

prompt_toolkit reads the strings at every new prompt (``load``), so entries
merged in while the console runs show up at the next prompt; Ctrl-R searches
all of them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncGenerator, Iterable, Iterator
from pathlib import Path

from prompt_toolkit.history import History

from zembed.frontend import open_private, private_dir

MAX_ENTRIES = 10_000  # per app, kept when the file is compacted


def default_history_file() -> Path:
    """``$ZCONSOLE_HISTORY``, else ``$XDG_DATA_HOME/zconsole/history.jsonl``."""
    configured = os.environ.get("ZCONSOLE_HISTORY")
    if configured:
        return Path(configured)
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data / "zconsole" / "history.jsonl"


class ConsoleHistory(History):
    """History for one app: entries oldest first, persisted as JSON lines
    (``{"time", "app", "input"}``), one file for every app."""

    def __init__(self, path: Path | None, app: str) -> None:
        super().__init__()
        self.path = path
        self.app = app
        self.entries: list[str] = []
        self.problem: str | None = None  # why the file could not be used, if it could not
        if path is not None:
            self.entries = list(self._read(path, app))

    # -- prompt_toolkit's History -----------------------------------------------

    async def load(self) -> AsyncGenerator[str, None]:
        for entry in reversed(self.entries):  # newest first, as prompt_toolkit wants
            yield entry

    def get_strings(self) -> list[str]:
        return list(self.entries)

    def append_string(self, string: str) -> None:
        if self._add(string):
            self.store_string(string)

    def load_history_strings(self) -> Iterable[str]:
        return reversed(self.entries)

    def store_string(self, string: str) -> None:
        if self.path is None:
            return
        record = json.dumps({"time": round(time.time(), 3), "app": self.app, "input": string})
        try:
            private_dir(self.path.parent)
            with os.fdopen(open_private(self.path, os.O_WRONLY | os.O_APPEND), "a", encoding="utf-8") as file:
                file.write(record + "\n")
        except OSError as exc:
            self.problem = f"cannot write {self.path}: {exc.strerror}"

    # -- ours -----------------------------------------------------------------------

    def merge(self, inputs: Iterable[str]) -> int:
        """Add the kernel's history (oldest first) where it is not already
        known; return how many entries were new."""
        known = set(self.entries)
        new = [text for text in inputs if text.strip() and text not in known]
        # Earlier sessions' inputs go before this console's own entries.
        self.entries[:0] = new
        return len(new)

    def switch_app(self, app: str) -> None:
        """Attached to another app: its entries join what is here."""
        if app == self.app or self.path is None:
            return
        self.app = app
        self.merge(self._read(self.path, app))

    def _add(self, string: str) -> bool:
        if self.entries and self.entries[-1] == string:
            return False  # a repeated command is remembered once, like bash's ignoredups
        self.entries.append(string)
        return True

    def _read(self, path: Path, app: str) -> Iterator[str]:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return
        except OSError as exc:
            self.problem = f"cannot read {path}: {exc.strerror}"
            return
        entries: list[str] = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash: skip it, keep the rest
            if isinstance(record, dict) and record.get("app") == app and isinstance(record.get("input"), str):
                if not entries or entries[-1] != record["input"]:
                    entries.append(record["input"])
        yield from entries[-MAX_ENTRIES:]
