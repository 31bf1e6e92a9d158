"""The state both example apps draw: a list of shapes, with listeners.

Plain Python, no toolkit: the Qt and Tk windows subscribe to changes and
repaint.  From the console, ``scene.add("circle", 120, 80, 40, "tomato")``
changes what the window shows at once; in a notebook,
``scene.control(shape)`` is a slider that moves it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

KINDS = ("circle", "square")


@dataclass
class Shape:
    kind: str  # "circle" or "square"
    x: float  # centre, in pixels
    y: float
    size: float  # diameter or side, in pixels
    color: str  # any colour name or #rrggbb both toolkits know

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.size <= 0:
            raise ValueError(f"size must be positive, not {self.size}")


@dataclass
class Scene:
    width: int = 480
    height: int = 320
    shapes: list[Shape] = field(default_factory=list)
    listeners: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def add(self, kind: str, x: float, y: float, size: float = 40, color: str = "steelblue") -> Shape:
        shape = Shape(kind, x, y, size, color)
        self.shapes.append(shape)
        self.changed()
        return shape

    def add_random(self) -> Shape:
        return self.add(
            random.choice(KINDS),
            random.uniform(30, self.width - 30),
            random.uniform(30, self.height - 30),
            random.uniform(15, 60),
            random.choice(["tomato", "gold", "seagreen", "steelblue", "orchid"]),
        )

    def control(self, shape: Shape) -> object:
        """A slider (ipywidgets) that moves ``shape`` left and right, for a
        notebook attached to the app: ``scene.control(scene.shapes[0])``.
        The slider follows the shape too, when anything else moves it."""
        from ipywidgets import IntSlider  # only when a notebook asks: the app runs without ipywidgets

        slider = IntSlider(value=round(shape.x), min=0, max=self.width, description=f"{shape.kind} x")

        def moved(change: dict) -> None:
            if shape.x != change["new"]:
                shape.x = change["new"]
                self.changed()

        def follow() -> None:
            if round(shape.x) != slider.value:
                slider.value = round(shape.x)

        slider.observe(moved, "value")
        self.listeners.append(follow)
        return slider

    def remove(self, shape: Shape) -> None:
        self.shapes.remove(shape)
        self.changed()

    def clear(self) -> None:
        self.shapes.clear()
        self.changed()

    def changed(self) -> None:
        """Tell the window to redraw (call it after changing shapes in place)."""
        for listener in self.listeners:
            listener()

    def __repr__(self) -> str:
        return f"<Scene {self.width}x{self.height}, {len(self.shapes)} shapes>"
