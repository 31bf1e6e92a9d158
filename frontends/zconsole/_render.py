"""What the user sees of each message: plain functions from message content
to terminal text, and rich outputs (images, HTML...) saved to files.

No I/O except writing those files; the console decides where text goes.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pygments import highlight
from pygments.formatters import TerminalFormatter
from pygments.lexers import PythonLexer, PythonTracebackLexer

from zembed.frontend import private_dir

RESET = "\x1b[0m"
_STYLES = {
    "in": "\x1b[32m",  # green, like IPython's In
    "out": "\x1b[31m",  # red, like IPython's Out
    "note": "\x1b[2m",  # dim: the console speaking
    "warn": "\x1b[33m",  # yellow: host busy, host died
    "other": "\x1b[36m",  # cyan: another client's work
    "stderr": "\x1b[31m",
}

# Rich outputs written to files, in the order they are looked for: (mime, suffix, binary?)
RICH_MIMES = (
    ("image/png", ".png", True),
    ("image/jpeg", ".jpg", True),
    ("image/gif", ".gif", True),
    ("image/svg+xml", ".svg", False),
    ("text/html", ".html", False),
    ("application/pdf", ".pdf", True),
    ("text/markdown", ".md", False),
    ("text/latex", ".tex", False),
    ("application/json", ".json", False),
)


def output_dir() -> Path:
    """Where rich outputs go: ``$ZCONSOLE_OUTPUT_DIR``, else a private
    per-user folder in the temporary directory."""
    configured = os.environ.get("ZCONSOLE_OUTPUT_DIR")
    if configured:
        return Path(configured)
    user = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"zconsole-{user}"


class Renderer:
    """Terminal text for messages, with colour or without."""

    def __init__(self, color: bool, files: Path | None = None) -> None:
        self.color = color
        self.files = files if files is not None else output_dir()
        self._formatter = TerminalFormatter() if color else None  # the 16 colours follow the terminal's theme
        self._saved = 0

    def style(self, kind: str, text: str) -> str:
        return f"{_STYLES[kind]}{text}{RESET}" if self.color else text

    def note(self, text: str) -> str:
        """A line from the console itself."""
        return self.style("note", f"[zconsole] {text}") + "\n"

    def warning(self, text: str) -> str:
        return self.style("warn", f"[zconsole] {text}") + "\n"

    def code(self, source: str) -> str:
        if self._formatter is None:
            return source if source.endswith("\n") else source + "\n"
        return highlight(source, PythonLexer(), self._formatter)

    def output(self, kind: str, content: dict[str, Any]) -> str:
        """An iopub output message's text ("" for kinds that show nothing)."""
        if kind == "stream":
            return self.stream(content)
        if kind == "execute_result":
            return self.result(content)
        if kind in ("display_data", "update_display_data"):
            return self.display(content)
        if kind == "error":
            return self.error(content)
        return ""

    def stream(self, content: dict[str, Any]) -> str:
        text = str(content.get("text", ""))
        return self.style("stderr", text) if content.get("name") == "stderr" and self.color else text

    def result(self, content: dict[str, Any]) -> str:
        count = content.get("execution_count")
        prompt = self.style("out", f"Out[{count}]: ")
        data = content.get("data", {})
        body = self.bundle(data, f"Out{count}")
        multiline = "\n" in str(data.get("text/plain", "")).rstrip("\n")  # a table starts on its own line
        return prompt + ("\n" if multiline else "") + body

    def display(self, content: dict[str, Any]) -> str:
        return self.bundle(content.get("data", {}), "display")

    def error(self, content: dict[str, Any]) -> str:
        lines = [str(line) for line in content.get("traceback", [])]
        text = "\n".join(lines) or f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"
        text = text.rstrip("\n") + "\n"
        if self._formatter is None or "\x1b[" in text:  # the kernel coloured it already (ipykernel does)
            return text
        return highlight(text, PythonTracebackLexer(), self._formatter)

    def bundle(self, data: dict[str, Any], stem: str) -> str:
        """text/plain, then one line per rich representation saved to a file."""
        parts = []
        plain = data.get("text/plain")
        if plain is not None:
            parts.append(str(plain).rstrip("\n") + "\n")
        for mime, suffix, binary in RICH_MIMES:
            if mime in data:
                path = self.save(data[mime], stem, suffix, binary)
                if path is not None:
                    parts.append(self.style("note", f"[{mime}: {path}]") + "\n")
        return "".join(parts) or self.style("note", f"[no text form: {', '.join(sorted(data))}]") + "\n"

    def save(self, value: Any, stem: str, suffix: str, binary: bool) -> Path | None:
        """Write one representation to a new file in the output folder."""
        try:
            if binary:
                payload = base64.b64decode(value if isinstance(value, str) else str(value))
            elif isinstance(value, str):
                payload = value.encode("utf-8")
            else:
                payload = json.dumps(value, indent=2).encode("utf-8")
            private_dir(self.files)
            self._saved += 1
            fd, name = tempfile.mkstemp(prefix=f"{stem}-{self._saved}-", suffix=suffix, dir=self.files)
            with os.fdopen(fd, "wb") as file:
                file.write(payload)
            return Path(name)
        except (OSError, ValueError):
            return None
