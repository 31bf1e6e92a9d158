"""Magics: the registry of ``%name`` and ``%%name``, the built-in magics,
and what the rewritten syntax calls (``_syntax``): ``run_line_magic``,
``run_cell_magic``, ``run_help`` (``obj?``, ``obj??``: the help the
frontend's pager shows, a ``page`` payload of the ``execute_reply``) and
``run_shell`` (``!cmd``, ``files = !ls``: ``_shell``).  A magic returns a
value like any expression; ``None`` shows nothing.

Hosts add their own with ``kernel.register_magic(name, function)``:
a line magic is ``function(line)``, a cell magic ``function(line, cell)``.
"""

from __future__ import annotations

import inspect
import math
import re
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import UsageError
from ._syntax import transform

if TYPE_CHECKING:
    from ._services import KernelServices


class MagicError(UsageError):
    """An unknown magic, or a magic used wrongly."""


@dataclass
class Magic:
    name: str
    function: Callable[..., Any]
    cell: bool  # a %%cell magic (else a %line magic)
    help: str

    @property
    def usage(self) -> str:
        return f"{'%%' if self.cell else '%'}{self.name}"


class Magics:
    """The magics of one kernel."""

    def __init__(self) -> None:
        self._line: dict[str, Magic] = {}
        self._cell: dict[str, Magic] = {}

    def register(self, name: str, function: Callable[..., Any], *, cell: bool = False, help: str | None = None) -> None:
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise UsageError(f"magic names are identifiers, not {name!r}")
        text = help or inspect.getdoc(function) or ""
        (self._cell if cell else self._line)[name] = Magic(name, function, cell, text)

    def names(self) -> list[str]:
        return sorted([m.usage for m in self._line.values()] + [m.usage for m in self._cell.values()])

    def find(self, name: str, cell: bool) -> Magic:
        table = self._cell if cell else self._line
        if name not in table:
            other = self._line if cell else self._cell
            hint = f" (%{'%' if not cell else ''}{name} exists as a {'cell' if not cell else 'line'} magic)"
            raise MagicError(
                f"unknown magic {'%%' if cell else '%'}{name}{hint if name in other else ''}; "
                f"magics: {', '.join(self.names())}"
            )
        return table[name]

    def lookup(self, usage: str) -> Magic | None:
        """The magic ``%name`` or ``%%name`` names, if any."""
        if usage.startswith("%%"):
            return self._cell.get(usage[2:])
        return self._line.get(usage[1:]) if usage.startswith("%") else None


# -- running magics -----------------------------------------------------------------


def _current() -> KernelServices:
    """The kernel whose cell is running here (found like ``display()`` finds it)."""
    from ._display import current_output

    kernel = getattr(current_output(), "kernel", None)
    if kernel is None:
        raise MagicError("magics run inside a zembed cell only")
    return kernel  # type: ignore[no-any-return]


def run_line_magic(name: str, line: str) -> Any:
    return _current().magics.find(name, cell=False).function(line)


def run_cell_magic(name: str, line: str, cell: str) -> Any:
    return _current().magics.find(name, cell=True).function(line, cell)


def run_help(name: str, detail: int) -> None:
    """``name?`` (detail 0) and ``name??`` (1, with the source): the
    inspection text, as a pager payload when the frontend takes one."""
    from ._display import current_output
    from ._introspect import inspect_object

    kernel = _current()
    found = inspect_object(name, len(name), detail, kernel.namespace, kernel.magics)
    if not found["found"]:
        print(f"Object `{name}` not found.")
        return
    output = current_output()
    text = found["data"]["text/plain"]
    if output is not None and hasattr(output, "page"):
        output.page(text)
    else:
        print(text)


def run_shell(command: str, capture: bool) -> list[str] | None:
    """``!command`` (streamed) and ``name = !command`` (its lines);
    ``_exit_code`` in the namespace is its exit status."""
    from ._shell import expand, run

    kernel = _current()
    status, lines = run(expand(command, kernel.namespace), capture=capture)
    kernel.namespace["_exit_code"] = status
    return lines if capture else None


# -- built-in magics ------------------------------------------------------------------


def _compile_statement(source: str, filename: str) -> tuple[Any, bool]:
    """Compile as an expression when it is one (so its value is returned)."""
    try:
        return compile(source, filename, "eval", dont_inherit=True), True
    except SyntaxError:
        return compile(source, filename, "exec", dont_inherit=True), False


def _seconds(value: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if value >= scale or unit == "ns":
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g} s"


def install_builtins(kernel: KernelServices) -> None:
    namespace = kernel.namespace
    magics = kernel.magics

    def time_magic(line: str) -> Any:
        """%time STATEMENT: run it once; print wall and CPU time; return its value."""
        if not line.strip():
            raise MagicError("usage: %time STATEMENT")
        code, is_expression = _compile_statement(transform(line), "<%time>")
        wall, cpu = time.perf_counter(), time.process_time()
        value = None
        if is_expression:
            value = eval(code, namespace)
        else:
            exec(code, namespace)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"CPU time: {_seconds(cpu)}, wall time: {_seconds(wall)}")
        return value

    def timeit_run(statement: str, setup: str, args: str) -> None:
        options = dict(re.findall(r"-([nr])\s*(\d+)", args))
        timer = timeit.Timer(statement, setup or "pass", globals=namespace)
        number = int(options.get("n", 0))
        if not number:
            number = timer.autorange()[0]  # enough loops for 0.2 s
        repeat = int(options.get("r", 5))
        per_loop = [t / number for t in timer.repeat(repeat=repeat, number=number)]
        mean = sum(per_loop) / len(per_loop)
        spread = math.sqrt(sum((t - mean) ** 2 for t in per_loop) / len(per_loop))
        loops = "loop" if number == 1 else "loops"
        print(
            f"{_seconds(mean)} ± {_seconds(spread)} per loop "
            f"(mean ± std. dev. of {repeat} runs, {number:,} {loops} each)"
        )

    def timeit_line(line: str) -> None:
        """%timeit [-n N] [-r R] STATEMENT: time a statement over many loops."""
        statement = re.sub(r"^(\s*-[nr]\s*\d+)*\s*", "", line)
        if not statement:
            raise MagicError("usage: %timeit [-n N] [-r R] STATEMENT")
        timeit_run(statement, "", line[: len(line) - len(statement)])

    def timeit_cell(line: str, cell: str) -> None:
        """%%timeit [-n N] [-r R] [SETUP]: time the cell's body; the first line's rest is setup."""
        setup = re.sub(r"^(\s*-[nr]\s*\d+)*\s*", "", line)
        timeit_run(cell, setup, line[: len(line) - len(setup)])

    def user_names(type_filter: str) -> list[str]:
        wanted = set(type_filter.split())
        return sorted(
            name
            for name, value in namespace.items()
            if not name.startswith("_") and (not wanted or type(value).__name__ in wanted)
        )

    def who(line: str) -> None:
        """%who [TYPE ...]: names in the namespace (of these types only, if given)."""
        names = user_names(line)
        print("  ".join(names) if names else "Namespace is empty." if not line else f"No variables of type {line}.")

    def whos(line: str) -> None:
        """%whos [TYPE ...]: a table of names with their type and a summary."""
        from ._display import plain_text

        names = user_names(line)
        if not names:
            print("Namespace is empty.")
            return
        rows = [(n, type(namespace[n]).__name__, plain_text(namespace[n]).replace("\n", " ")) for n in names]
        name_width = max(8, *(len(r[0]) for r in rows))
        type_width = max(4, *(len(r[1]) for r in rows))
        print(f"{'Variable':<{name_width}}   {'Type':<{type_width}}   Data/Info")
        print("-" * (name_width + type_width + 20))
        for name, kind, text in rows:
            print(f"{name:<{name_width}}   {kind:<{type_width}}   {text[:60] + ('...' if len(text) > 60 else '')}")

    def zembed_status(line: str) -> None:
        """%zembed: the kernel's status: app, loop, clients, messages, host time."""
        status = kernel.status()
        width = max(len(k) for k in status)
        for key, value in status.items():
            print(f"{key:<{width}}  {value}")

    def list_magics(line: str) -> None:
        """%magic: the magics there are, with their help."""
        for usage in magics.names():
            magic = magics.lookup(usage)
            assert magic is not None
            summary = magic.help.splitlines()[0] if magic.help else ""
            print(f"{usage:<16} {summary}")
        print("\nAlso: NAME? and NAME?? (help, with the source), !COMMAND and VAR = !COMMAND (shell).")

    def lsmagic(line: str) -> None:
        """%lsmagic: the magics there are (as %magic)."""
        list_magics(line)

    def shell_cell(shell: str) -> Callable[[str, str], None]:
        def run_cell(line: str, cell: str) -> None:
            from ._shell import run

            namespace["_exit_code"] = run(cell, shell=shell)[0]

        run_cell.__doc__ = f"%%{shell}: run the cell with {shell}, its output streamed; _exit_code is its status."
        return run_cell

    magics.register("time", time_magic)
    magics.register("timeit", timeit_line)
    magics.register("timeit", timeit_cell, cell=True)
    magics.register("who", who)
    magics.register("whos", whos)
    magics.register("zembed", zembed_status)
    magics.register("magic", list_magics)
    magics.register("lsmagic", lsmagic)
    magics.register("bash", shell_cell("bash"), cell=True)
    magics.register("sh", shell_cell("sh"), cell=True)
