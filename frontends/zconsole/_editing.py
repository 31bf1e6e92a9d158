"""The line being typed: when Enter runs it, what Tab offers, which lines
are the console's own commands or help requests.

Enter asks the kernel's ``is_complete`` synchronously (``KernelLink.ask``:
keys typed meanwhile wait in the terminal, in order); when the kernel does
not answer in time, Python's own rule decides for a few seconds, then the
kernel is asked again, so a host that was busy once does not leave the
console on the fallback for good.
"""

from __future__ import annotations

import asyncio
import codeop
import re
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any

from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import is_searching
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from ._link import KernelLink

IS_COMPLETE_TIMEOUT = 0.5  # then the local rule decides, for LOCAL_RULE_FOR seconds
LOCAL_RULE_FOR = 3.0
COMPLETE_TIMEOUT = 1.0  # Tab offers nothing when the host takes longer
EXIT_WORDS = {"exit", "quit", "exit()", "quit()"}
COMMANDS = {
    ":help": "this list",
    ":status": "the kernel attached to: app, pid, connection file, state",
    ":shutdown": "ask the host's kernel to shut down (the host decides whether it exits), then leave",
    ":exit": "leave; the host keeps running (also Ctrl-D, or exit)",
}
_HELP_REQUEST = re.compile(r"\s*(\?\??)?([%\w.\[\]'\"]+?)(\?\??)?\s*")

LinkGetter = Callable[[], KernelLink | None]


def help_request(text: str) -> tuple[str, int] | None:
    """``obj?`` / ``?obj`` (detail 0) and ``obj??`` / ``??obj`` (detail 1):
    (name, detail level), or None for any other input."""
    match = _HELP_REQUEST.fullmatch(text)
    if not match or bool(match.group(1)) == bool(match.group(3)):
        return None
    return match.group(2), len(match.group(1) or match.group(3)) - 1


def local_is_complete(text: str) -> tuple[str, str]:
    """Python's own rule (``codeop``), used when the kernel cannot answer in time."""
    if text.lstrip().startswith("%%"):
        return ("complete", "") if text.endswith("\n") or text.rstrip("\n") != text else ("incomplete", "")
    if text.lstrip().startswith("%"):
        return "complete", ""
    try:
        code = codeop.compile_command(text, "<input>", "exec")
    except (SyntaxError, OverflowError, ValueError):
        return "invalid", ""
    if code is not None:
        return "complete", ""
    last = text.rstrip("\n").split("\n")[-1]
    indent = last[: len(last) - len(last.lstrip())]
    return "incomplete", indent + ("    " if last.rstrip().endswith(":") else "")


class EnterRule:
    """Is the input complete?  The kernel says, or Python's rule when it is slow."""

    def __init__(self, link: LinkGetter) -> None:
        self._link = link
        self._local_until = 0.0

    def __call__(self, text: str) -> tuple[str, str]:
        stripped = text.strip()
        if not stripped or stripped.startswith(":") or stripped in EXIT_WORDS or stripped.endswith("?"):
            return "complete", ""
        link = self._link()
        if link is not None and time.monotonic() >= self._local_until:
            reply = link.ask("is_complete_request", {"code": text}, IS_COMPLETE_TIMEOUT)
            if reply is None:
                self._local_until = time.monotonic() + LOCAL_RULE_FOR  # busy once is not busy for good
            elif reply.content.get("status") in ("complete", "incomplete", "invalid"):
                return str(reply.content["status"]), str(reply.content.get("indent", ""))
        return local_is_complete(text)


def key_bindings(rule: Callable[[str], tuple[str, str]]) -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("enter", filter=~is_searching)  # in Ctrl-R search, Enter accepts the match
    def _(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is not None:
            buffer.apply_completion(state.current_completion)
            return
        buffer.cancel_completion()
        status, indent = rule(buffer.text)
        if status == "incomplete":
            buffer.insert_text("\n" + indent)
        else:
            buffer.validate_and_handle()

    @bindings.add("escape", "enter")
    def _(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")  # a new line, even where the code is complete

    return bindings


class KernelCompleter(Completer):
    """Tab: the kernel's completions on the host's live objects, as a menu."""

    def __init__(self, link: LinkGetter) -> None:
        self._link = link

    def get_completions(self, document: Document, complete_event: Any) -> Iterator[Completion]:
        return iter(())  # only the async path is used

    async def get_completions_async(  # type: ignore[override]
        self, document: Document, complete_event: Any
    ) -> AsyncGenerator[Completion, None]:
        link = self._link()
        if link is None or document.text.lstrip().startswith(":"):
            return
        content = {"code": document.text, "cursor_pos": document.cursor_position}
        try:
            reply = await link.request("shell", "complete_request", content, timeout=COMPLETE_TIMEOUT)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            return
        found = reply.content
        start = int(found.get("cursor_start", document.cursor_position)) - document.cursor_position
        kinds = {
            str(item.get("text")): str(item.get("type", ""))
            for item in found.get("metadata", {}).get("_jupyter_types_experimental", [])
            if isinstance(item, dict)
        }
        for match in map(str, found.get("matches", [])):
            yield Completion(match, start_position=start, display_meta=kinds.get(match, ""))


class CommandCompleter(Completer):
    """Tab after ``:``: the console's own commands."""

    def get_completions(self, document: Document, complete_event: Any) -> Iterator[Completion]:
        text = document.text_before_cursor
        if text.startswith(":") and " " not in text:
            for command, help_text in COMMANDS.items():
                if command.startswith(text):
                    yield Completion(command, start_position=-len(text), display_meta=help_text)
