"""IPython's syntax in a cell, rewritten to Python before it is compiled.

Line for line, so tracebacks still point at the lines the user typed:
``%name args`` becomes a call of the running cell's magic registry, a cell
that starts with ``%%name args`` is handed whole to that cell magic,
``obj?`` and ``obj??`` (or ``?obj``) ask for help, ``!cmd`` and
``name = !cmd`` run a shell command.  Lines inside triple-quoted strings
are left alone.  The rewritten code calls ``zembed._magics`` by name, so
this module imports nothing of zembed: completion and ``is_complete``
use it without loading the magics.
"""

from __future__ import annotations

import re

_LINE_MAGIC = re.compile(r"^(?P<indent>[ \t]*)%(?P<name>[A-Za-z_]\w*)(?P<args>.*)$")
_CELL_MAGIC = re.compile(r"^%%(?P<name>[A-Za-z_]\w*)(?P<args>[^\n]*)(?:\n|$)")
_HELP = re.compile(
    r"^(?P<indent>[ \t]*)(?:(?P<before>\?\??)(?P<name1>%{0,2}[A-Za-z_][\w.]*)"
    r"|(?P<name2>%{0,2}[A-Za-z_][\w.]*)(?P<after>\?\??))[ \t]*$"
)
_SHELL = re.compile(r"^(?P<indent>[ \t]*)(?:(?P<target>[A-Za-z_]\w*)[ \t]*=[ \t]*)?!(?!=)(?P<command>.*)$")
_MODULE = "__import__('zembed._magics', fromlist=['_'])"
_CALL = f"{_MODULE}.run_line_magic"


def transform(source: str) -> str:
    """Python source for a cell that may use magics (line numbers kept)."""
    match = _CELL_MAGIC.match(source)
    if match:
        body = source[match.end() :]
        name, args = match.group("name"), match.group("args").strip()
        return f"__import__('zembed._magics', fromlist=['_']).run_cell_magic({name!r}, {args!r}, {body!r})"
    if "%" not in source and "?" not in source and "!" not in source:
        return source
    lines = source.split("\n")
    for number, line in enumerate(lines):
        rewritten = _rewrite_line(line)
        if rewritten is not None and not _inside_string(lines, number):
            lines[number] = rewritten
    return "\n".join(lines)


def _rewrite_line(line: str) -> str | None:
    """The Python for one line of IPython syntax, or None for plain Python."""
    found = _HELP.match(line)
    if found:
        name = found.group("name1") or found.group("name2")
        detail = len(found.group("before") or found.group("after")) - 1
        return f"{found.group('indent')}{_MODULE}.run_help({name!r}, {detail})"
    found = _LINE_MAGIC.match(line)
    if found:
        name, args = found.group("name"), found.group("args").strip()
        return f"{found.group('indent')}{_CALL}({name!r}, {args!r})"
    found = _SHELL.match(line)
    if found:
        target, command = found.group("target"), found.group("command").strip()
        call = f"{_MODULE}.run_shell({command!r}, {target is not None})"
        return f"{found.group('indent')}{target + ' = ' if target else ''}{call}"
    return None


def _inside_string(lines: list[str], number: int) -> bool:
    """Is line ``number`` inside a triple-quoted string opened above it?"""
    before = "\n".join(lines[:number])
    return (before.count('"""') % 2 == 1) or (before.count("'''") % 2 == 1)
