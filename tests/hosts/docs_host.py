"""The host the docs' client programs talk to: ``python docs_host.py NAME``.

Serves ``scene`` and ``renderer``, the objects docs/scripting.md's
examples use, on an asyncio loop; prints the usual JSON line once serving.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import zembed


class Scene:
    def __init__(self) -> None:
        self.objects = [f"object-{i}" for i in range(42)]
        self.selected: list[str] = []

    def rebuild(self) -> None:
        self.objects = sorted(self.objects)

    def select(self, name: str, extend: bool = False) -> None:
        self.selected = [*self.selected, name] if extend else [name]


class Renderer:
    def render(self, frame: int) -> str:
        return f"frame {frame} rendered"


async def main(name: str) -> None:
    kernel = zembed.start_kernel({"scene": Scene(), "renderer": Renderer()}, name=name)
    os.write(1, (json.dumps({"connection_file": str(kernel.connection_file), "pid": os.getpid()}) + "\n").encode())
    try:
        await asyncio.sleep(300)
    finally:
        kernel.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
