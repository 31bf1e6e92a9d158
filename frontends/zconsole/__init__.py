"""zconsole: the terminal console for zembed kernels (and any Jupyter kernel).

``zconsole --existing [NAME]`` attaches to a running host; the console is a
process of its own, so it outlives a host that crashes, tells you so, keeps
your history and re-attaches when the host comes back.
"""

from __future__ import annotations

from zembed.frontend import __version__

from .cli import main

__all__ = ["__version__", "main"]
