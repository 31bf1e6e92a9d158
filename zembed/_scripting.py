"""Host-side helpers for the client API's ``eval`` and ``call``.

The client evaluates ``__import__("zembed._scripting").encode(EXPR)`` as a
user expression: the value comes back as JSON text when it is JSON-able
(``{"json": value}``) and as its ``repr`` otherwise (``{"repr": text}``).
"""

from __future__ import annotations

import json
from typing import Any


def encode(value: Any) -> str:
    try:
        return json.dumps({"json": value})
    except (TypeError, ValueError):  # not JSON-able (or circular): say what it is
        return json.dumps({"repr": repr(value)})


def call(function: Any, arguments: str) -> str:
    """Call ``function(*args, **kwargs)`` with JSON-encoded arguments."""
    decoded = json.loads(arguments)
    return encode(function(*decoded["args"], **decoded["kwargs"]))
