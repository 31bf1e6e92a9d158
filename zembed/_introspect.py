"""Completion, inspection and "is this cell complete?" on live objects.

Completion never runs arbitrary code: it only follows dotted names and
literal subscripts (``scene.objects["Cube"].``) with ``getattr`` and
``[]``, which is what a user expects to see evaluated on Tab.  Positions
are in code points, which is what Python's ``str`` indexes (spec:
"cursor_pos is in unicode code points").
"""

from __future__ import annotations

import ast
import builtins
import codeop
import functools
import inspect
import io
import keyword
import linecache
import pkgutil
import re
import sys
import tokenize
import warnings
from typing import TYPE_CHECKING, Any

from ._syntax import transform as transform_magics

if TYPE_CHECKING:
    from ._magics import Magics

_IDENT = r"[^\W\d]\w*"
# A chain like  a.b["k"][0].c  ending at the cursor, optionally followed by
# ".partial" or '["partial' (an open string key).
_CHAIN = re.compile(
    rf"(?P<chain>{_IDENT}(?:\s*\.\s*{_IDENT}|\[\s*(?:'[^']*'|\"[^\"]*\"|-?\d+)\s*\])*)"
    rf"(?:(?P<dot>\.)(?P<attr>\w*)|\[\s*(?P<quote>['\"])(?P<key>[^'\"]*))$"
)
_NAME = re.compile(rf"(?:{_IDENT})?$")
_IMPORT = re.compile(r"^\s*(?:from\s+(?P<from>[\w.]*)(?:\s+import\s+(?P<fromname>\w*))?|import\s+(?P<mod>[\w.]*))$")

_MAGIC_PREFIX = re.compile(r"^\s*(%%?\w*)$")
_MAGIC_AT_CURSOR = re.compile(r"(?:^|\s)(%%?\w+)$")
_module_names: list[str] | None = None


@functools.lru_cache(maxsize=256)
def _parse_chain(chain: str) -> ast.expr:
    return ast.parse(chain, mode="eval").body


def _resolve(chain: str, namespace: dict[str, Any]) -> Any:
    """Follow ``a.b["k"][0]`` through getattr/getitem only."""
    node = _parse_chain(chain)

    def walk(n: ast.AST) -> Any:
        if isinstance(n, ast.Name):
            if n.id in namespace:
                return namespace[n.id]
            return getattr(builtins, n.id)
        if isinstance(n, ast.Attribute):
            return getattr(walk(n.value), n.attr)
        if isinstance(n, ast.Subscript):
            return walk(n.value)[ast.literal_eval(n.slice)]
        raise LookupError(chain)

    return walk(node)


def _type_of(value: Any) -> str:
    if inspect.isclass(value):
        return "class"
    if inspect.ismodule(value):
        return "module"
    if callable(value):
        return "function"
    return "instance"


def _attributes(obj: Any, prefix: str = "") -> list[str]:
    """Attribute names starting with ``prefix``: public first, then _x, then __x__."""
    try:
        names = [n for n in set(dir(obj)) if n.startswith(prefix)]
    except Exception:
        names = []
    return sorted(names, key=lambda n: (n.startswith("_"), n.startswith("__"), n.lower()))


def _modules() -> list[str]:
    global _module_names
    if _module_names is None:
        names = set(sys.builtin_module_names)
        names.update(m.name for m in pkgutil.iter_modules())
        _module_names = sorted(names)
    return _module_names


def complete(code: str, cursor_pos: int, namespace: dict[str, Any], magics: Magics | None = None) -> dict[str, Any]:
    """Content of a ``complete_reply``."""
    before = code[:cursor_pos]
    line = before.rsplit("\n", 1)[-1]
    matches: list[tuple[str, str]] = []  # (text, type)
    start = cursor_pos

    imported = _IMPORT.match(line)
    chain = _CHAIN.search(line)
    magic = _MAGIC_PREFIX.match(line)
    if magic and magics is not None:
        prefix = magic.group(1)
        matches = [(usage, "magic") for usage in magics.names() if usage.startswith(prefix)]
        start = cursor_pos - len(prefix)
    elif imported and (imported.group("mod") is not None or imported.group("fromname") is None):
        prefix = imported.group("mod") if imported.group("mod") is not None else imported.group("from")
        head, _, tail = prefix.rpartition(".")
        if head:
            try:
                package = __import__(head, fromlist=["_"])
                names = [m.name for m in pkgutil.iter_modules(getattr(package, "__path__", []))]
            except Exception:
                names = []
        else:
            names = _modules()
        matches = [(n, "module") for n in names if n.startswith(tail)]
        start = cursor_pos - len(tail)
    elif imported and imported.group("fromname") is not None:
        tail = imported.group("fromname")
        try:
            module = __import__(imported.group("from"), fromlist=["_"])
            matches = [(n, "instance") for n in _attributes(module, tail)]
        except Exception:
            matches = []
        start = cursor_pos - len(tail)
    elif chain:
        try:
            obj = _resolve(chain.group("chain"), namespace)
        except Exception:
            obj = _NOTHING
        if obj is not _NOTHING and chain.group("dot"):
            attr = chain.group("attr")
            shown = [n for n in _attributes(obj, attr) if attr.startswith("_") or not n.startswith("_")]
            matches = [(n, _safe_type(obj, n)) for n in shown]
            start = cursor_pos - len(attr)
        elif obj is not _NOTHING:
            key, quote = chain.group("key"), chain.group("quote")
            try:
                keys = [k for k in obj.keys() if isinstance(k, str)]  # type: ignore[union-attr]
            except Exception:
                keys = []
            matches = [(f"{k}{quote}]", "key") for k in keys if k.startswith(key)]
            start = cursor_pos - len(key)
    else:
        word = _NAME.search(line).group(0)  # type: ignore[union-attr]
        if word or line.strip() == "" or line[-1:] in " ([{,=:+-*/%<>!&|^~;":
            seen: dict[str, str] = {}
            for name, value in list(namespace.items()) + list(vars(builtins).items()):
                if name.startswith(word) and name not in seen and (word.startswith("_") or not name.startswith("_")):
                    seen[name] = _type_of(value)
            for name in keyword.kwlist:
                if name.startswith(word):
                    seen.setdefault(name, "keyword")
            matches = sorted(seen.items(), key=lambda kv: kv[0].lower())
            start = cursor_pos - len(word)

    return {
        "status": "ok",
        "matches": [m for m, _ in matches],
        "cursor_start": start,
        "cursor_end": cursor_pos,
        "metadata": {
            "_jupyter_types_experimental": [
                {"text": m, "type": t, "start": start, "end": cursor_pos} for m, t in matches
            ]
        },
    }


_NOTHING = object()


def _safe_type(obj: Any, name: str) -> str:
    try:
        # getattr_static: no property code runs just to label a menu entry.
        return _type_of(inspect.getattr_static(obj, name))
    except Exception:
        return "instance"


# -- inspect ---------------------------------------------------------------

_CALL_OPEN = re.compile(rf"({_IDENT}(?:\.{_IDENT})*)\s*\($")


def _name_at(code: str, cursor_pos: int) -> str | None:
    """The dotted name under the cursor, or the callee of an open call."""
    left = re.search(rf"{_IDENT}(?:\.{_IDENT})*\.?\w*$", code[:cursor_pos])
    right = re.match(r"\w*", code[cursor_pos:])
    if left and left.group(0):
        name = left.group(0) + (right.group(0) if right else "")
        return name.rstrip(".")
    # Inside an open call: foo(a, |  -> foo
    depth = 0
    for i in range(cursor_pos - 1, -1, -1):
        ch = code[i]
        if ch in ")]}":
            depth += 1
        elif ch in "([{":
            if depth == 0:
                match = _CALL_OPEN.search(code[: i + 1])
                return match.group(1) if match and ch == "(" else None
            depth -= 1
        elif ch == "\n" and depth == 0:
            break
    return None


def inspect_object(
    code: str, cursor_pos: int, detail_level: int, namespace: dict[str, Any], magics: Magics | None = None
) -> dict[str, Any]:
    """Content of an ``inspect_reply``: signature, docstring, source location."""
    right = re.match(r"\w*", code[cursor_pos:])
    at_cursor = _MAGIC_AT_CURSOR.search(code[:cursor_pos] + (right.group(0) if right else ""))
    if at_cursor and magics is not None and magics.lookup(at_cursor.group(1)) is not None:
        magic = magics.lookup(at_cursor.group(1))
        assert magic is not None
        text = f"Magic:     {magic.usage}\nDocstring:\n{magic.help or '<no docstring>'}"
        return {"status": "ok", "found": True, "data": {"text/plain": text}, "metadata": {}}
    name = _name_at(code, cursor_pos)
    if not name:
        return {"status": "ok", "found": False, "data": {}, "metadata": {}}
    try:
        obj = _resolve(name, namespace)
    except Exception:
        if keyword.iskeyword(name):
            return {"status": "ok", "found": False, "data": {}, "metadata": {}}
        return {"status": "ok", "found": False, "data": {}, "metadata": {}}
    return {"status": "ok", "found": True, "data": {"text/plain": describe(name, obj, detail_level)}, "metadata": {}}


def describe(name: str, obj: Any, detail_level: int = 0) -> str:
    lines: list[str] = []
    type_name = type(obj).__qualname__
    lines.append(f"Type:      {type_name}")
    if not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)):
        from ._display import plain_text

        text = plain_text(obj)
        lines.append(f"Value:     {text if len(text) < 2000 else text[:2000] + ' ...'}")
    try:
        target = obj.__init__ if inspect.isclass(obj) and obj.__init__ is not object.__init__ else obj
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            signature = inspect.signature(target if callable(obj) else None)  # type: ignore[arg-type]
        shown = str(signature)
        if inspect.isclass(obj):
            shown = "(" + shown[1:].split(", ", 1)[-1] if shown.startswith("(self") else shown
            shown = shown.replace("(self)", "()")
        lines.append(f"Signature: {name}{shown}")
    except (TypeError, ValueError):
        pass
    location, source = source_of(obj)
    if location:
        lines.append(f"File:      {location}")
    doc = inspect.getdoc(obj)
    if doc and (detail_level == 0 or source is None):
        lines.append("Docstring:\n" + doc)
    elif not doc and detail_level == 0:
        lines.append("Docstring: <no docstring>")
    if detail_level > 0:
        lines.append("Source:\n" + source.rstrip("\n") if source else "Source:    <not available>")
    return "\n".join(lines)


def source_of(obj: Any) -> tuple[str | None, str | None]:
    """``("file:line", source)`` of ``obj``, either part None if unknown.

    Classes defined in a cell have no module file; their methods' code
    objects name the cell, whose source zembed registered with linecache.
    """
    if inspect.isclass(obj):
        found = _class_source_from_methods(obj)
        if found is not None:
            return found
    try:
        filename = inspect.getsourcefile(obj) or inspect.getfile(obj)
    except TypeError:
        return None, None
    try:
        source_lines, line_no = inspect.getsourcelines(obj)
        return f"{filename}:{max(line_no, 1)}", "".join(source_lines)
    except (OSError, TypeError):
        return filename, None


def _class_source_from_methods(cls: type) -> tuple[str, str] | None:
    for value in vars(cls).values():
        code = getattr(inspect.unwrap(value) if callable(value) else value, "__code__", None)
        if code is None or not code.co_filename.startswith("<"):
            continue
        lines = linecache.getlines(code.co_filename)
        pattern = re.compile(rf"^\s*class\s+{re.escape(cls.__name__)}\b")
        for start in range(min(code.co_firstlineno, len(lines)) - 1, -1, -1):
            if pattern.match(lines[start]):
                block = inspect.getblock(lines[start:])
                return f"{code.co_filename}:{start + 1}", "".join(block)
        return None
    return None


# -- is_complete -----------------------------------------------------------


def is_complete(code: str) -> dict[str, Any]:
    """Content of an ``is_complete_reply``.

    Like IPython: a cell that ends inside an indented block stays
    ``incomplete`` until a blank line is entered, so Enter in a console adds
    the next line of the block instead of running half of it.
    """
    if not code.strip():
        return {"status": "complete"}
    if code.startswith("%%"):  # a cell magic's body is not Python: it ends at a blank line
        return (
            {"status": "complete"}
            if code.endswith("\n\n") or code.endswith("\n")
            else {"status": "incomplete", "indent": ""}
        )
    code = transform_magics(code)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled = codeop.compile_command(code, "<input>", "exec")
    except (SyntaxError, ValueError, OverflowError):
        return {"status": "invalid"}
    last_line = code.split("\n")[-1]
    indent = re.match(r"[ \t]*", last_line).group(0)  # type: ignore[union-attr]
    if compiled is None:
        if last_line.rstrip().endswith(":"):
            indent += "    "
        return {"status": "incomplete", "indent": indent}
    if last_line.strip() and _ends_in_block(code):
        return {"status": "incomplete", "indent": indent}
    return {"status": "complete"}


def _ends_in_block(code: str) -> bool:
    """True when the last statement sits inside an indented block.

    The tokenizer closes open blocks with DEDENT tokens after the final
    NEWLINE; brackets continued over lines produce no INDENT at all.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return False
    for token in reversed(tokens):
        if token.type == tokenize.DEDENT:
            return True
        if token.type not in (tokenize.ENDMARKER, tokenize.NEWLINE, tokenize.NL, tokenize.COMMENT):
            return False
    return False
