"""The console: a prompt_toolkit prompt in front of a kernel link.

It owns what the user sees and when: the prompt (``In [n]:``), output as it
arrives (also while the user types: prompt_toolkit redraws the line being
typed below it), other clients' work marked as theirs, Ctrl-C as an
``interrupt_request``, and the life of the host: busy (the heartbeat
answers, the main thread does not come back), dead (no heartbeat), back
(a live kernel with the same app name appears: re-attach).  Everything the
user typed stays in the prompt's history through all of it.
"""

from __future__ import annotations

import asyncio
import codeop
import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.completion import Completer, Completion, merge_completers
from prompt_toolkit.document import Document
from prompt_toolkit.filters import is_searching
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.lexers import PygmentsLexer
from pygments.lexers import PythonLexer

from zembed._discovery import KernelRecord, probe, resolve
from zembed._errors import ConnectionFileError
from zembed._protocol import Message

from ._history import ConsoleHistory
from ._link import KernelLink
from ._render import Renderer

HANDSHAKE_TIMEOUT = 10.0  # seconds a kernel may take to answer its first kernel_info
HEARTBEAT_EVERY = 0.5  # seconds between heartbeat pings
HEARTBEAT_TIMEOUT = 0.8  # a ping unanswered this long is a miss; two misses (or a gone pid) mean dead
IS_COMPLETE_TIMEOUT = 0.5  # then the local rule decides, for a few seconds
LOCAL_RULE_FOR = 3.0
BUSY_REPORT_EVERY = 5.0  # seconds between "still busy" lines
_HELP_REQUEST = re.compile(r"\s*(\?\??)?([%\w.\[\]'\"]+?)(\?\??)?\s*")
_EXIT_WORDS = {"exit", "quit", "exit()", "quit()"}

COMMANDS = {
    ":help": "this list",
    ":status": "the kernel attached to: app, pid, connection file, state",
    ":shutdown": "ask the host's kernel to shut down (the host decides whether it exits), then leave",
    ":exit": "leave; the host keeps running (also Ctrl-D, or exit)",
}


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


class _Quit(Exception):
    """Leave the console (detach)."""


class Console:
    """One interactive session, attached to one kernel at a time."""

    def __init__(self, record: KernelRecord, history: ConsoleHistory, *, color: bool, wait_for: str | None = None):
        self.record = record
        self.history = history
        self.render = Renderer(color)
        self.color = color
        self.link: KernelLink | None = None
        self.state = "dead"  # live, busy or dead
        self.count = 1  # the next In [n]
        self._own: set[str] = set()  # msg_ids of our executes: their output is ours, even late
        self._idle: dict[str, asyncio.Event] = {}
        self._inputs: asyncio.Queue[Message] = asyncio.Queue()
        self._dead = asyncio.Event()
        self._sigint = asyncio.Event()
        self._waiting_for: str | None = None  # msg_id of the execute being waited for
        self._local_rule_until = 0.0
        self._last_foreign: str | None = None
        self._shown_output = False
        self._attached_once = False
        self._at_line_start = True
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wait_for = wait_for
        self._pending: list[str] = []  # text waiting to be printed above the prompt
        self.prompt = PromptSession[str](
            message=self._prompt_message,
            prompt_continuation=self._continuation,
            multiline=True,
            lexer=PygmentsLexer(PythonLexer) if color else None,
            completer=merge_completers([_CommandCompleter(), _KernelCompleter(self)]),
            complete_while_typing=False,
            history=history,
            key_bindings=self._key_bindings(),
            enable_history_search=False,  # Up walks history; Ctrl-R searches it
            include_default_pygments_style=color,
            color_depth=None if color else _mono(),
        )

    # -- the main loop ---------------------------------------------------------------

    async def run(self) -> int:
        # SIGINT reaches the console only in cooked mode, i.e. while no prompt
        # is up (in the prompt, Ctrl-C is a key): while a cell runs.  Armed
        # for the whole session, so a Ctrl-C right after Enter is not lost.
        loop = asyncio.get_running_loop()
        sigint_armed = _arm_sigint(loop, self._sigint)
        if self.record.state == "dead" and self._wait_for is not None:
            self.write(self.render.note(f"waiting for {self._wait_for or 'a kernel'} to start (Ctrl-D leaves)"))
            self._go_dead()
        elif not await self._attach(self.record, first=True):
            silent = f"{self._who()} did not answer within {HANDSHAKE_TIMEOUT:g} s"
            self.write(self.render.warning(f"{silent}; waiting for it (Ctrl-D leaves)"))
            self._go_dead()
        try:
            while True:
                if not self._at_line_start:
                    self.write("\n")
                try:
                    text = await self.prompt.prompt_async(handle_sigint=False)
                except KeyboardInterrupt:
                    continue  # Ctrl-C at the prompt clears the line
                except EOFError:
                    break
                try:
                    await self._handle(text)
                except _Quit:
                    break
        finally:
            self._leave()
            await self._stop_tasks()
            if sigint_armed:
                loop.remove_signal_handler(signal.SIGINT)
        return 0

    async def _handle(self, text: str) -> None:
        stripped = text.strip()
        if not stripped:
            return
        if stripped.startswith(":"):
            await self._command(stripped)
            return
        if self.link is None:
            if stripped in _EXIT_WORDS:
                raise _Quit
            self.write(self.render.warning("no host attached; kept in history (Up brings it back)"))
            return
        match = _HELP_REQUEST.fullmatch(text)
        if match and (match.group(1) or match.group(3)) and not (match.group(1) and match.group(3)):
            await self._inspect(match.group(2), len(match.group(1) or match.group(3)) - 1)
            return
        await self._execute(text)

    def _leave(self) -> None:
        if self.link is not None:
            self.write(self.render.note(f"detached; {self._who()} keeps running"))
            self.link.close()
            self.link = None
        else:
            self.write(self.render.note("left"))

    # -- output ----------------------------------------------------------------------

    def write(self, text: str) -> None:
        """Everything the user sees goes through here, in order.  While the
        prompt is up, text is printed above it (prompt_toolkit erases the
        prompt, prints, and redraws the line being typed), in batches."""
        if not text:
            return
        if not self.prompt.app.is_running and not self._pending:
            sys.stdout.write(text)
            sys.stdout.flush()
            self._at_line_start = text.endswith("\n")
            return
        self._pending.append(text)
        if len(self._pending) == 1:
            run_in_terminal(self._flush_pending, in_executor=False)

    def _flush_pending(self) -> None:
        text, self._pending = "".join(self._pending), []
        if self.prompt.app.is_running and not text.endswith("\n"):
            text += "\n"  # a partial line would run into the redrawn prompt
        sys.stdout.write(text)
        sys.stdout.flush()
        self._at_line_start = text.endswith("\n")

    def _prompt_message(self) -> ANSI:
        prefix = ""
        if self.link is None:
            prefix = self.render.style("warn", f"(waiting for {self._app()}) ")
        return ANSI(prefix + self.render.style("in", f"In [{self.count}]: "))

    def _continuation(self, width: int, line_number: int, wrap_count: int) -> ANSI:
        return ANSI(self.render.style("in", "...: ".rjust(width)))

    def _app(self) -> str:
        return self.record.app or self.record.connection_file.name

    def _who(self) -> str:
        pid = f" (pid {self.record.pid})" if self.record.pid else ""
        return f"{self._app()}{pid}"

    # -- messages from the kernel ----------------------------------------------------

    def _on_iopub(self, message: Message) -> None:
        parent = message.parent_header.get("msg_id")
        kind = message.msg_type
        content = message.content
        if kind == "status":
            if content.get("execution_state") == "idle" and parent in self._idle:
                self._idle.pop(parent).set()
            return
        if not parent or kind in ("iopub_welcome", "clear_output", "comm_open", "comm_msg", "comm_close"):
            return
        ours = parent in self._own
        if kind == "execute_input":
            count = content.get("execution_count")
            if isinstance(count, int):
                self.count = max(self.count, count + 1)
                self.prompt.app.invalidate()
            if not ours:
                self._last_foreign = parent
                self.write(self._foreign_header(message, count) + self.render.code(str(content.get("code", ""))))
            return
        text = self._render(kind, content)
        if not text:
            return
        if not ours and parent != self._last_foreign:
            self._last_foreign = parent
            text = self._foreign_header(message, None) + text
        elif ours:
            self._last_foreign = None
            self._shown_output = True
        if ours and parent != self._waiting_for:
            text = self.render.note("late output of an earlier cell:") + text
        self.write(text)

    def _render(self, kind: str, content: dict[str, Any]) -> str:
        if kind == "stream":
            return self.render.stream(content)
        if kind == "execute_result":
            return self.render.result(content)
        if kind in ("display_data", "update_display_data"):
            return self.render.display(content)
        if kind == "error":
            return self.render.error(content)
        return ""

    def _foreign_header(self, message: Message, count: int | None) -> str:
        who = f"{message.parent_header.get('username', '?')}@{str(message.parent_header.get('session', '?'))[:6]}"
        where = f" In [{count}]" if count is not None else ""
        separator = "" if self._at_line_start else "\n"
        return separator + self.render.style("other", f"[other client {who}]{where}:") + "\n"

    def _on_stdin(self, message: Message) -> None:
        if message.msg_type == "input_request":
            self._inputs.put_nowait(message)

    # -- running code --------------------------------------------------------------------

    async def _execute(self, code: str) -> None:
        link = self.link
        assert link is not None
        self._sigint.clear()  # a Ctrl-C from now on is for this cell
        msg_id = link.send(
            "shell",
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": True,
                "stop_on_error": True,
            },
        )
        self._own.add(msg_id)
        idle = self._idle[msg_id] = asyncio.Event()
        self._waiting_for = msg_id
        self._shown_output = False
        try:
            reply = await self._wait(link, msg_id, idle)
        finally:
            self._waiting_for = None
        if reply is None:
            return
        content = reply.content
        if isinstance(content.get("execution_count"), int):
            self.count = max(self.count, content["execution_count"] + 1)
        if content.get("status") == "aborted":
            self.write(self.render.note("aborted: an earlier cell failed before this one ran"))
        for payload in content.get("payload") or []:
            await self._payload(payload)
        if self._shown_output:
            self.write("\n")  # a blank line between a cell's output and the next prompt, as in IPython

    async def _wait(self, link: KernelLink, msg_id: str, idle: asyncio.Event) -> Message | None:
        """The reply of ``msg_id`` once its output is all here (idle), or None
        if the host died or the user stopped waiting.  Ctrl-C interrupts
        the remote code; a second one, or one while the host is busy, stops
        the waiting."""
        reply = link.reply(msg_id)
        started = time.monotonic()
        interrupts = 0
        busy_reported = 0.0
        waits: dict[str, asyncio.Future[Any]] = {
            "idle": asyncio.ensure_future(idle.wait()),
            "dead": asyncio.ensure_future(self._dead.wait()),
            "sigint": asyncio.ensure_future(self._sigint.wait()),
            "input": asyncio.ensure_future(self._inputs.get()),
        }
        try:
            while True:
                await asyncio.wait([reply, *waits.values()], timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                if reply.done() and idle.is_set():
                    if busy_reported:
                        self.write(self.render.note(f"host back after {time.monotonic() - started:.1f} s"))
                    return reply.result() if not reply.cancelled() else None
                if waits["dead"].done():
                    self.write(self.render.warning(f"In [{self.count}] was running when the host died"))
                    return None
                if waits["input"].done():
                    await self._answer_input(link, waits["input"].result())
                    waits["input"] = asyncio.ensure_future(self._inputs.get())
                if waits["sigint"].done():
                    self._sigint.clear()
                    waits["sigint"] = asyncio.ensure_future(self._sigint.wait())
                    interrupts += 1
                    if interrupts == 1 and not busy_reported:
                        link.forget(link.send("control", "interrupt_request", {}))
                        continue
                    self.write(
                        self.render.warning(
                            "stopped waiting; the cell runs when the host comes back and its output will show here"
                        )
                    )
                    return None
                if not reply.done() and time.monotonic() - started >= 1.0:
                    busy = await self._busy_seconds(link)
                    if busy is not None and time.monotonic() - busy_reported >= BUSY_REPORT_EVERY:
                        busy_reported = time.monotonic()
                        self.write(
                            self.render.warning(
                                f"host busy for {busy:.0f} s: its main thread is not running kernel work "
                                "(Ctrl-C stops waiting)"
                            )
                        )
        finally:
            for waiter in waits.values():
                waiter.cancel()

    async def _busy_seconds(self, link: KernelLink) -> float | None:
        """How long the host has been away, if it is busy outside our cell."""
        try:
            reply = await link.request("control", "kernel_info_request", {}, timeout=1.0)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            return None
        status = reply.content.get("zembed")
        if not isinstance(status, dict) or status.get("executing"):
            return None
        seconds = status.get("host_busy_seconds")
        if isinstance(seconds, (int, float)) and seconds >= 1.0:
            self.state = "busy"
            return float(seconds)
        self.state = "live"
        return None

    async def _answer_input(self, link: KernelLink, request: Message) -> None:
        prompt = str(request.content.get("prompt", ""))
        password = bool(request.content.get("password"))
        session = PromptSession[str]()
        try:
            value = await session.prompt_async(prompt, is_password=password, handle_sigint=False)
        except KeyboardInterrupt:
            link.forget(link.send("control", "interrupt_request", {}))
            value = ""
        except EOFError:
            value = ""
        link.answer_input(request, value)
        self._at_line_start = True

    async def _payload(self, payload: dict[str, Any]) -> None:
        source = payload.get("source")
        if source == "ask_exit":
            raise _Quit
        if source == "page":
            data = payload.get("data", {})
            self._page(str(data.get("text/plain", "")) if isinstance(data, dict) else str(data))
        elif source == "set_next_input" and isinstance(payload.get("text"), str):
            self.prompt.default_buffer.text = payload["text"]

    # -- introspection -------------------------------------------------------------------

    async def _inspect(self, name: str, detail: int) -> None:
        assert self.link is not None
        try:
            reply = await self.link.request(
                "shell", "inspect_request", {"code": name, "cursor_pos": len(name), "detail_level": detail}, timeout=5.0
            )
        except asyncio.TimeoutError:
            self.write(self.render.warning("no answer within 5 s: the host is busy"))
            return
        content = reply.content
        if content.get("status") != "ok" or not content.get("found"):
            self.write(f"Object `{name}` not found.\n")
            return
        self._page(str(content.get("data", {}).get("text/plain", "")))

    def _page(self, text: str) -> None:
        """Print, or hand to ``$PAGER`` (default ``less -R``) when longer than the screen."""
        text = text.rstrip("\n") + "\n"
        rows = shutil.get_terminal_size().lines
        if sys.stdout.isatty() and text.count("\n") > rows - 2:
            command = shlex.split(os.environ.get("PAGER") or "less -R")
            with contextlib.suppress(OSError):
                subprocess.run(command, input=text.encode("utf-8", "replace"), check=False)
                return
        self.write(text)

    async def complete(self, document: Document) -> tuple[int, list[str], list[str | None]]:
        """The kernel's completions at the cursor: (start offset, matches, types)."""
        if self.link is None:
            return 0, [], []
        try:
            reply = await self.link.request(
                "shell",
                "complete_request",
                {"code": document.text, "cursor_pos": document.cursor_position},
                timeout=1.0,
            )
        except (asyncio.TimeoutError, asyncio.CancelledError):
            return 0, [], []
        content = reply.content
        matches = [str(m) for m in content.get("matches", [])]
        start = int(content.get("cursor_start", document.cursor_position)) - document.cursor_position
        kinds: dict[str, str] = {}
        for item in content.get("metadata", {}).get("_jupyter_types_experimental", []):
            if isinstance(item, dict):
                kinds[str(item.get("text"))] = str(item.get("type", ""))
        return start, matches, [kinds.get(m) for m in matches]

    # -- keys -------------------------------------------------------------------------------

    def _key_bindings(self) -> KeyBindings:
        bindings = KeyBindings()

        @bindings.add("enter", filter=~is_searching)  # in Ctrl-R search, Enter accepts the match
        def _(event: KeyPressEvent) -> None:
            buffer = event.current_buffer
            state = buffer.complete_state
            if state is not None and state.current_completion is not None:
                buffer.apply_completion(state.current_completion)
                return
            buffer.cancel_completion()
            status, indent = self._is_complete(buffer.text)
            if status == "incomplete":
                buffer.insert_text("\n" + indent)
            else:
                buffer.validate_and_handle()

        @bindings.add("escape", "enter")
        def _(event: KeyPressEvent) -> None:
            event.current_buffer.insert_text("\n")  # a new line, even where the code is complete

        return bindings

    def _is_complete(self, text: str) -> tuple[str, str]:
        """The kernel's is_complete, asked synchronously (see ``KernelLink.ask``);
        Python's rule when the kernel does not answer in time, for a few
        seconds, then the kernel is asked again."""
        stripped = text.strip()
        if not stripped or stripped.startswith(":") or stripped in _EXIT_WORDS or stripped.endswith("?"):
            return "complete", ""
        if self.link is not None and time.monotonic() >= self._local_rule_until:
            reply = self.link.ask("is_complete_request", {"code": text}, IS_COMPLETE_TIMEOUT)
            if reply is None:
                self._local_rule_until = time.monotonic() + LOCAL_RULE_FOR  # busy once is not busy for good
            else:
                status = reply.content.get("status")
                if status in ("complete", "incomplete", "invalid"):
                    return str(status), str(reply.content.get("indent", ""))
        return local_is_complete(text)

    # -- console commands --------------------------------------------------------------------

    async def _command(self, line: str) -> None:
        name = line.split()[0]
        if name == ":help":
            width = max(map(len, COMMANDS))
            self.write("".join(f"  {c:<{width}}  {h}\n" for c, h in COMMANDS.items()))
            self.write(
                "  Enter runs complete code; Esc Enter adds a line; Tab completes; obj? and obj?? describe;\n"
                "  Ctrl-R searches history; Ctrl-C interrupts a running cell; Ctrl-D leaves.\n"
            )
        elif name == ":status":
            state = self.state if self.link is not None else "dead (waiting for it to come back)"
            self.write(
                f"  app              {self._app()}\n  pid              {self.record.pid or '-'}\n"
                f"  connection file  {self.record.connection_file}\n  state            {state}\n"
                f"  history          {len(self.history.entries)} entries in {self.history.path or '(memory)'}\n"
            )
        elif name == ":shutdown":
            await self._shutdown()
        elif name in (":exit", ":quit"):
            raise _Quit
        else:
            self.write(self.render.warning(f"unknown command {name}; commands: {', '.join(COMMANDS)}"))

    async def _shutdown(self) -> None:
        if self.link is None:
            self.write(self.render.warning("no host attached"))
            return
        try:
            await self.link.request("control", "shutdown_request", {"restart": False}, timeout=3.0)
        except asyncio.TimeoutError:
            self.write(self.render.warning("the kernel did not confirm the shutdown within 3 s"))
        else:
            self.write(self.render.note(f"the kernel in {self._who()} shut down"))
        self.link.close()
        self.link = None
        raise _Quit

    # -- attach, watch, re-attach ------------------------------------------------------------

    async def _attach(self, record: KernelRecord, first: bool) -> bool:
        link = KernelLink(record, self._on_iopub, self._on_stdin)
        info = await self._handshake(link)
        if info is None:
            link.close()
            return False
        self.record, self.link, self.state = record, link, "live"
        self._attached_once = True
        self._dead = asyncio.Event()
        if record.app:
            self.history.switch_app(record.app)
        status = info["zembed"] if isinstance(info.get("zembed"), dict) else {}
        if isinstance(status.get("execution_count"), int):
            self.count = status["execution_count"] + 1
        else:
            await self._count_from_kernel(link)
        await self._merge_history(link)
        self._spawn(self._watch(link))
        if first:
            banner = str(info.get("banner", "")).rstrip("\n")
            self.write(banner + "\n" if banner else "")
            self.write(
                self.render.note(
                    f"attached to {self._who()}. Ctrl-D detaches (the host keeps running), "
                    "Ctrl-C interrupts, :help for more"
                )
            )
        else:
            self.write(
                self.render.note(
                    f"re-attached to {self._who()}: a new host process, so names from before are gone; history is kept"
                )
            )
        self.prompt.app.invalidate()
        return True

    async def _handshake(self, link: KernelLink, timeout: float = HANDSHAKE_TIMEOUT) -> dict[str, Any] | None:
        """kernel_info until its reply and its idle status both arrive (a
        new SUB socket misses what is published before it joins: then ask
        again).  The reply may take long on a loaded machine; it is waited
        for as long as the timeout allows."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg_id = link.send("shell", "kernel_info_request", {})
            idle = self._idle[msg_id] = asyncio.Event()
            try:
                reply = await asyncio.wait_for(asyncio.shield(link.reply(msg_id)), left)
                await asyncio.wait_for(idle.wait(), 0.5)
                return reply.content
            except asyncio.TimeoutError:
                continue
            finally:
                link.forget(msg_id)
                self._idle.pop(msg_id, None)
        return None

    async def _count_from_kernel(self, link: KernelLink) -> None:
        # Any Jupyter kernel: a silent, empty execute replies with the current count.
        content = {"code": "", "silent": True, "store_history": False, "user_expressions": {}, "allow_stdin": False}
        try:
            reply = await link.request("shell", "execute_request", content, timeout=2.0)
        except asyncio.TimeoutError:
            return
        if isinstance(reply.content.get("execution_count"), int):
            self.count = reply.content["execution_count"] + 1

    async def _merge_history(self, link: KernelLink) -> None:
        content = {"hist_access_type": "tail", "n": 1000, "output": False, "raw": True}
        try:
            reply = await link.request("shell", "history_request", content, timeout=2.0)
        except asyncio.TimeoutError:
            return
        entries = reply.content.get("history", [])
        self.history.merge(str(entry[2]) for entry in entries if isinstance(entry, list) and len(entry) >= 3)

    async def _watch(self, link: KernelLink) -> None:
        """Heartbeat every half second; two misses (or one and a vanished pid)
        mean the host died: within about 2 s of its death."""
        misses = 0
        while link is self.link:
            if await link.ping(HEARTBEAT_TIMEOUT):
                misses = 0
                await asyncio.sleep(HEARTBEAT_EVERY)
                continue
            misses += 1
            if misses >= 2 or (self.record.pid is not None and _pid_gone(self.record.pid)):
                if link is self.link:
                    self._host_died()
                return

    def _host_died(self) -> None:
        assert self.link is not None
        self.link.close()
        self.link = None
        self.write(
            self.render.warning(
                f"the host died: {self._who()} stopped answering its heartbeat. "
                f"Your history is kept; waiting for {self._app()} to come back (Ctrl-D leaves)"
            )
        )
        self._go_dead()

    def _go_dead(self) -> None:
        self.state = "dead"
        self._dead.set()
        self.prompt.app.invalidate()
        self._spawn(self._reattach())

    async def _reattach(self) -> None:
        """Look for the host's successor twice a second; attach to it."""
        while self.link is None:
            record = await asyncio.to_thread(self._successor)
            if record is not None and await self._attach(record, first=not self._attached_once):
                self._wait_for = None
                return
            await asyncio.sleep(0.5)

    def _successor(self) -> KernelRecord | None:
        """The newest live kernel of the same app; for a kernel without an
        app name (any Jupyter kernel), the same connection file, alive again."""
        if self._wait_for is not None:  # --wait: the name given, or any kernel
            spec: str | None = self._wait_for or None
        else:
            spec = self.record.app or str(self.record.connection_file)
        try:
            record = resolve(spec)
        except (ConnectionFileError, OSError):
            return None
        if record.state not in ("live", "busy"):
            record = probe(record)
        return record if record.state in ("live", "busy") else None

    # -- tasks -----------------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class _KernelCompleter(Completer):
    """Tab: the kernel's completions on the host's live objects, as a menu."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def get_completions(self, document: Document, complete_event: Any) -> Iterator[Completion]:
        return iter(())  # only the async path is used

    async def get_completions_async(self, document: Document, complete_event: Any):  # type: ignore[override]
        if document.text.lstrip().startswith(":"):
            return
        start, matches, kinds = await self.console.complete(document)
        for match, kind in zip(matches, kinds, strict=True):
            yield Completion(match, start_position=start, display_meta=kind or "")


class _CommandCompleter(Completer):
    def get_completions(self, document: Document, complete_event: Any) -> Iterator[Completion]:
        text = document.text_before_cursor
        if text.startswith(":") and " " not in text:
            for command, help_text in COMMANDS.items():
                if command.startswith(text):
                    yield Completion(command, start_position=-len(text), display_meta=help_text)


def _arm_sigint(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> bool:
    try:
        loop.add_signal_handler(signal.SIGINT, event.set)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
        return False
    return True


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 sends nothing: an existence check
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A dead child not yet reaped still has a pid (Linux: state Z)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _mono() -> Any:
    from prompt_toolkit.output import ColorDepth

    return ColorDepth.MONOCHROME
