"""The Tk variant of the shapes app: the same scene on a tkinter Canvas.

    python examples/gui_app/tk_app.py [--name shapes-tk]

then ``zconsole --existing shapes-tk`` and try::

    scene.add("circle", 120, 80, 60, "tomato")   # the canvas redraws at once
    window.canvas_items()                        # what Tk drew: (type, fill) per item
    window.save_postscript("/tmp/shot.ps")       # the canvas, rendered by Tk
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tkinter

from scene import Scene

import zembed


class Window:
    def __init__(self, root: tkinter.Tk, scene: Scene) -> None:
        self.root = root
        self.scene = scene
        self.kernel: zembed.Kernel | None = None
        root.title("Shapes (zembed example, Tk)")
        bar = tkinter.Frame(root)
        tkinter.Button(bar, text="Add shape", command=scene.add_random).pack(side="left")
        tkinter.Button(bar, text="Clear", command=scene.clear).pack(side="left")
        bar.pack(fill="x")
        self.canvas = tkinter.Canvas(root, width=scene.width, height=scene.height, background="white")
        self.canvas.pack()
        self.status = tkinter.Label(root, anchor="w")
        self.status.pack(fill="x")
        scene.listeners.append(self.redraw)
        self._keep_status()

    def redraw(self) -> None:
        self.canvas.delete("shape")
        for shape in self.scene.shapes:
            half = shape.size / 2
            box = (shape.x - half, shape.y - half, shape.x + half, shape.y + half)
            draw = self.canvas.create_oval if shape.kind == "circle" else self.canvas.create_rectangle
            draw(*box, fill=shape.color, outline="", tags="shape")

    def _keep_status(self) -> None:
        self.show_status()
        self.root.after(500, self._keep_status)

    def show_status(self) -> None:
        kernel = self.kernel
        if kernel is None or not kernel.running:
            text = "kernel: stopped"
        else:
            state = "busy" if kernel.executing else "idle"
            text = f"kernel {kernel.name!r} ({state}) · attach: zconsole --existing {kernel.name}"
        self.status.configure(text=text)

    def canvas_items(self) -> list[tuple[str, str]]:
        """What Tk has drawn: (item type, fill colour) for each shape item."""
        items = self.canvas.find_withtag("shape")
        return [(self.canvas.type(item), self.canvas.itemcget(item, "fill")) for item in items]

    def save_postscript(self, path: str) -> str:
        """The canvas as Tk renders it, as PostScript."""
        self.canvas.postscript(file=path, colormode="color")
        return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", default="shapes-tk", help="the kernel's app name")
    parser.add_argument("--announce", action="store_true", help="print the connection file as JSON (for tests)")
    args = parser.parse_args(argv)

    root = tkinter.Tk()
    scene = Scene()
    window = Window(root, scene)
    # loop="auto" finds the Tk root; kernel work runs once mainloop() turns.
    kernel = zembed.start_kernel({"root": root, "window": window, "scene": scene}, name=args.name)
    window.kernel = kernel
    window.show_status()

    def quit_app() -> None:
        kernel.stop()
        root.destroy()

    root.protocol("WM_DELETE_WINDOW", quit_app)
    window.quit = quit_app  # type: ignore[attr-defined]
    if args.announce:
        print(json.dumps({"connection_file": str(kernel.connection_file), "pid": os.getpid()}), flush=True)
    root.mainloop()
    kernel.stop()  # idempotent: also when mainloop ended another way
    return 0


if __name__ == "__main__":
    sys.exit(main())
