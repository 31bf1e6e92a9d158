"""The console: a prompt_toolkit prompt in front of a kernel link.

It owns what the user sees and when: the prompt (``In [n]:``), output as it
arrives (also while the user types, above the line being typed), other
clients' work marked as theirs, Ctrl-C as an ``interrupt_request``, and the
life of the host: busy (the heartbeat answers, the main thread does not come
back), dead (no heartbeat), back (a live kernel with the same app name
appears: re-attach).  Everything the user typed stays in the prompt's
history through all of it.

Its parts: ``_link`` (the sockets), ``_editing`` (Enter, Tab, help
requests), ``_liveness`` (heartbeat, successor), ``_screen`` (where text
goes), ``_render`` (what text), ``_console_history``.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import merge_completers
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.output import ColorDepth
from pygments.lexers import PythonLexer

from zembed.frontend import KernelRecord, Message

from ._console_history import ConsoleHistory
from ._editing import COMMANDS, EXIT_WORDS, CommandCompleter, EnterRule, KernelCompleter, help_request, key_bindings
from ._link import KernelLink
from ._liveness import Ending, crash_report, crash_text, ending, successor, waiting_reason, watch
from ._render import Renderer
from ._screen import Screen

HANDSHAKE_TIMEOUT = 10.0  # seconds a kernel may take to answer its first kernel_info
BUSY_AFTER = 1.0  # seconds without a reply before asking whether the host is busy
BUSY_REPORT_EVERY = 5.0  # seconds between "still busy" lines
REATTACH_EVERY = 0.5  # seconds between looks for a dead host's successor
_SILENT_KINDS = {"iopub_welcome", "clear_output", "comm_open", "comm_msg", "comm_close"}


class _Quit(Exception):
    """Leave the console (detach)."""


class Console:
    """One interactive session, attached to one kernel at a time."""

    def __init__(self, record: KernelRecord, history: ConsoleHistory, *, color: bool, wait_for: str | None = None):
        self.record = record
        self.history = history
        self.render = Renderer(color)
        self.link: KernelLink | None = None
        self.busy = False  # the last look found the host away from kernel work
        self.count = 1  # the next In [n]
        self._inputs: asyncio.Queue[Message] = asyncio.Queue()
        self._dead = asyncio.Event()
        self._sigint = asyncio.Event()
        self._waiting_for: str | None = None  # msg_id of the execute being waited for
        self._running_count: int | None = None  # its In [n], once the kernel said (execute_input)
        self._ending: Ending | None = None  # how the last host went away
        self._told_crashes: set[str] = set()  # crash reports shown already (report files)
        self._last_foreign: str | None = None  # another client's request whose output was shown last
        self._shown_output = False
        self._attached_once = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wait_for = wait_for
        self.prompt = PromptSession[str](
            message=self._prompt_message,
            prompt_continuation=self._continuation,
            multiline=True,
            lexer=PygmentsLexer(PythonLexer) if color else None,
            completer=merge_completers([CommandCompleter(), KernelCompleter(lambda: self.link)]),
            complete_while_typing=False,
            history=history,
            key_bindings=key_bindings(EnterRule(lambda: self.link)),
            enable_history_search=False,  # Up walks history; Ctrl-R searches it
            include_default_pygments_style=color,
            color_depth=None if color else ColorDepth.MONOCHROME,
        )
        self.screen = Screen(lambda: self.prompt.app.is_running)
        self.write = self.screen.write

    @property
    def state(self) -> str:
        return "dead" if self.link is None else "busy" if self.busy else "live"

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
        elif not await self._attach(self.record):
            silent = f"{self._who()} did not answer within {HANDSHAKE_TIMEOUT:g} s"
            self.write(self.render.warning(f"{silent}; waiting for it (Ctrl-D leaves)"))
            self._go_dead()
        try:
            while True:
                if not self.screen.at_line_start:
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
            if stripped in EXIT_WORDS:
                raise _Quit
            self.write(self.render.warning("no host attached; kept in history (Up brings it back)"))
            return
        wanted = help_request(text)
        if wanted is not None:
            await self._inspect(*wanted)
            return
        await self._execute(text)

    def _leave(self) -> None:
        if self.link is not None:
            self.write(self.render.note(f"detached; {self._who()} keeps running"))
            self.link.close()
            self.link = None
        else:
            self.write(self.render.note("left"))

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

    def _on_iopub(self, message: Message, ours: bool) -> None:
        parent = message.parent_header.get("msg_id")
        kind = message.msg_type
        content = message.content
        if not parent or kind in _SILENT_KINDS:
            return
        if kind == "execute_input":
            count = content.get("execution_count")
            if isinstance(count, int):
                self.count = max(self.count, count + 1)
                if ours and parent == self._waiting_for:
                    self._running_count = count
                self.prompt.app.invalidate()
            if not ours:
                self._last_foreign = parent
                self.write(self._foreign_header(message, count) + self.render.code(str(content.get("code", ""))))
            return
        text = self.render.output(kind, content)
        if not text:
            return
        if not ours and parent != self._last_foreign:
            self._last_foreign = parent
            text = self._foreign_header(message, None) + text
        elif ours:
            self._last_foreign = None
            self._shown_output = True
            if parent != self._waiting_for:
                text = self.render.note("late output of an earlier cell:") + text
        self.write(text)

    def _foreign_header(self, message: Message, count: int | None) -> str:
        who = f"{message.parent_header.get('username', '?')}@{str(message.parent_header.get('session', '?'))[:6]}"
        where = f" In [{count}]" if count is not None else ""
        separator = "" if self.screen.at_line_start else "\n"
        return separator + self.render.style("other", f"[other client {who}]{where}:") + "\n"

    def _on_stdin(self, message: Message) -> None:
        if message.msg_type == "input_request":
            self._inputs.put_nowait(message)

    # -- running code --------------------------------------------------------------------

    async def _execute(self, code: str) -> None:
        link = self.link
        assert link is not None
        self._sigint.clear()  # a Ctrl-C from now on is for this cell
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": True,
            "stop_on_error": True,
        }
        msg_id = link.send("shell", "execute_request", content)
        self._waiting_for, self._running_count = msg_id, None
        self._shown_output = False
        try:
            reply = await self._wait(link, msg_id)
        finally:
            self._waiting_for = None
        if reply is None:
            return
        result = reply.content
        if isinstance(result.get("execution_count"), int):
            self.count = max(self.count, result["execution_count"] + 1)
        if result.get("status") == "aborted":
            self.write(self.render.note("aborted: an earlier cell failed before this one ran"))
        for payload in result.get("payload") or []:
            await self._payload(payload)
        if self._shown_output:
            self.write("\n")  # a blank line between a cell's output and the next prompt, as in IPython

    async def _wait(self, link: KernelLink, msg_id: str) -> Message | None:
        """The reply of ``msg_id`` once its output is all here (idle), or None
        if the host died or the user stopped waiting.  Ctrl-C interrupts
        the remote code; a second one, or one while the host is busy, stops
        the waiting."""
        reply, idle = link.reply(msg_id), link.idle(msg_id)
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
                    cell = f"In [{self._running_count}]" if self._running_count is not None else "your cell"
                    verb = self._ending.verb if self._ending is not None else "the host died"
                    self.write(self.render.warning(f"{cell} was running when {verb}"))
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
                if not reply.done() and time.monotonic() - started >= BUSY_AFTER:
                    why = await self._why_waiting(link)
                    if why is not None and time.monotonic() - busy_reported >= BUSY_REPORT_EVERY:
                        busy_reported = time.monotonic()
                        self.write(self.render.warning(f"{why} (Ctrl-C stops waiting)"))
        finally:
            for waiter in waits.values():
                waiter.cancel()

    async def _why_waiting(self, link: KernelLink) -> str | None:
        """Why our cell has not run yet, when it is not ours that runs: the
        host's thread is away (busy in its own code, or a poll host not
        polling), or another client's cell runs, perhaps waiting for that
        client's input.  zembed kernels say so in kernel_info (over control)."""
        try:
            reply = await link.request("control", "kernel_info_request", {}, timeout=1.0)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            return None
        status = reply.content.get("zembed")
        if not isinstance(status, dict):
            return None
        reason, self.busy = waiting_reason(status, link.session.session_id)
        return reason

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
        self.screen.at_line_start = True

    async def _payload(self, payload: dict[str, Any]) -> None:
        source = payload.get("source")
        if source == "ask_exit":
            raise _Quit
        if source == "page":
            data = payload.get("data", {})
            self.screen.page(str(data.get("text/plain", "")) if isinstance(data, dict) else str(data))
        elif source == "set_next_input" and isinstance(payload.get("text"), str):
            self.prompt.default_buffer.text = payload["text"]

    async def _inspect(self, name: str, detail: int) -> None:
        assert self.link is not None
        content = {"code": name, "cursor_pos": len(name), "detail_level": detail}
        try:
            reply = await self.link.request("shell", "inspect_request", content, timeout=5.0)
        except asyncio.TimeoutError:
            self.write(self.render.warning("no answer within 5 s: the host is busy"))
            return
        if reply.content.get("status") != "ok" or not reply.content.get("found"):
            self.write(f"Object `{name}` not found.\n")
            return
        self.screen.page(str(reply.content.get("data", {}).get("text/plain", "")))

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

    async def _attach(self, record: KernelRecord) -> bool:
        link = KernelLink(record, self._on_iopub, self._on_stdin)
        info = await link.handshake(HANDSHAKE_TIMEOUT)
        if info is None:
            link.close()
            return False
        first, self._attached_once = not self._attached_once, True
        self.record, self.link, self.busy = record, link, False
        self._dead = asyncio.Event()
        if record.app:
            self.history.switch_app(record.app)
        count = await link.execution_count(info)
        if count is not None:
            self.count = count + 1
        self.history.merge(await link.history_tail())
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
            meta = info.get("zembed")
            for crash in meta.get("crashes", []) if isinstance(meta, dict) else []:
                if isinstance(crash, dict) and crash.get("text"):
                    self._tell_crash(crash, str(crash["text"]))
        self.prompt.app.invalidate()
        return True

    async def _watch(self, link: KernelLink) -> None:
        if not await watch(link, self.record.pid, lambda: link is self.link):
            return
        link.close()
        self.link = None
        self._ending = end = await asyncio.to_thread(ending, self.record)
        waiting = f"Your history is kept; waiting for {self._app()} to come back (Ctrl-D leaves)"
        if end.kind == "died":
            self.write(self.render.warning(f"the host died: {self._who()} stopped answering its heartbeat. {waiting}"))
        elif end.kind == "stopped":
            self.write(self.render.note(f"the host stopped its kernel: {self._who()} runs on without it. {waiting}"))
        else:
            self.write(self.render.note(f"the host exited: {self._who()} stopped its kernel and ended. {waiting}"))
        self._go_dead()
        if end.kind == "died":
            report = end.report or await asyncio.to_thread(crash_report, self.record)
            if report is not None:
                self._tell_crash(report, crash_text(report))

    def _tell_crash(self, report: dict[str, Any], text: str) -> None:
        """Show a crash once: at the death, and not again when the next
        host announces the same report."""
        key = str(report.get("file") or text)
        if key in self._told_crashes:
            return
        self._told_crashes.add(key)
        self.write(self.render.warning(f"{text} (zembed crashes {self._app()})"))

    def _go_dead(self) -> None:
        self._dead.set()
        self.prompt.app.invalidate()
        self._spawn(self._reattach())

    async def _reattach(self) -> None:
        """Look for the host's successor twice a second; attach to it."""
        while self.link is None:
            record = await asyncio.to_thread(successor, self.record, self._wait_for)
            if record is not None and await self._attach(record):
                self._wait_for = None
                return
            await asyncio.sleep(REATTACH_EVERY)

    # -- tasks -----------------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _arm_sigint(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> bool:
    try:
        loop.add_signal_handler(signal.SIGINT, event.set)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
        return False
    return True
