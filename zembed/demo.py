"""A small host application to explore: ``python -m zembed.demo``.

A particle world stepped at 60 frames per second on an asyncio loop, with
zembed serving its live objects.  Attach with ``zconsole --existing
zembed-demo`` (or ``zembed demo``, which does both), then try::

    app.world.particles[:3]      # live objects, changing every frame
    app.world.gravity = -2.0     # change the running simulation
    app.fps                      # the host keeps its frame rate
    app.busy(3)                  # block the host's thread for 3 s
    %profile_host 3              # where does the host spend its time?
    app.collisions = False       # ... then switch off the hotspot it finds
    app.crash()                  # kill the host on purpose (segfault)
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field

import zembed


@dataclass
class Particle:
    x: float
    y: float
    vx: float
    vy: float

    def __repr__(self) -> str:
        return f"Particle(x={self.x:.2f}, y={self.y:.2f}, vx={self.vx:+.2f}, vy={self.vy:+.2f})"


@dataclass
class World:
    """A box of bouncing particles; ``step`` advances it by ``dt`` seconds."""

    width: float = 10.0
    height: float = 10.0
    gravity: float = -9.81
    particles: list[Particle] = field(default_factory=list)

    def add(self, count: int = 1) -> None:
        """Add ``count`` particles at random places and speeds."""
        for _ in range(count):
            self.particles.append(
                Particle(
                    random.uniform(0, self.width),
                    random.uniform(0, self.height),
                    random.uniform(-3, 3),
                    random.uniform(-3, 3),
                )
            )

    def step(self, dt: float) -> None:
        for p in self.particles:
            p.vy += self.gravity * dt
            p.x += p.vx * dt
            p.y += p.vy * dt
            if not 0 <= p.x <= self.width:
                p.vx = -p.vx
                p.x = min(max(p.x, 0.0), self.width)
            if not 0 <= p.y <= self.height:
                p.vy = -p.vy * 0.98
                p.y = min(max(p.y, 0.0), self.height)

    def count_contacts(self, radius: float = 0.5) -> int:
        """Pairs of particles closer than ``radius``: a naive O(n²) check, on purpose."""
        contacts = 0
        particles = self.particles
        for i, a in enumerate(particles):
            for b in particles[i + 1 :]:
                if (a.x - b.x) ** 2 + (a.y - b.y) ** 2 < radius * radius:
                    contacts += 1
        return contacts

    def energy(self) -> float:
        """Total kinetic plus potential energy (unit masses)."""
        return sum(0.5 * (p.vx**2 + p.vy**2) - self.gravity * p.y for p in self.particles)

    def _repr_html_(self) -> str:
        return f"<b>World</b>: {len(self.particles)} particles, energy {self.energy():.1f}"


class DemoApp:
    """The host application: its frame loop, and things to poke at."""

    def __init__(self, particles: int = 150, fps: float = 60.0) -> None:
        self.world = World()
        self.world.add(particles)
        self.target_fps = fps
        self.frame = 0
        self.fps = 0.0
        self.paused = False
        self.collisions = True  # the frame's hotspot: count_contacts, O(n²)
        self.contacts = 0
        self.frame_ms = 0.0  # the host's own work in the last frame
        self._fps_window: list[float] = []

    def tick(self, dt: float) -> None:
        started = time.perf_counter()
        if not self.paused:
            self.world.step(dt)
        if self.collisions:
            self.contacts = self.world.count_contacts()
        self.frame += 1
        now = time.monotonic()
        self._fps_window = [t for t in self._fps_window if now - t < 1.0] + [now]
        self.fps = float(len(self._fps_window))
        self.frame_ms = (time.perf_counter() - started) * 1000

    def busy(self, seconds: float) -> None:
        """Block the host's own thread (as a slow frame would)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            math.sqrt(12345.6789)

    def crash(self) -> None:
        """Kill the host process with a segmentation fault, on purpose."""
        ctypes.string_at(0)

    def __repr__(self) -> str:
        return (
            f"<DemoApp frame={self.frame} fps={self.fps:.0f} particles={len(self.world.particles)} "
            f"frame_ms={self.frame_ms:.2f} contacts={self.contacts}>"
        )


async def run(name: str, announce: bool, parent_pid: int | None = None) -> None:
    app = DemoApp()
    namespace = {"app": app, "world": app.world, "__name__": "__demo__"}
    kernel = zembed.start_kernel(namespace, name=name)
    if announce:
        print(json.dumps({"connection_file": str(kernel.connection_file), "pid": os.getpid()}), flush=True)
    else:
        print(
            f"demo host running (pid {os.getpid()}); attach with:\n"
            f"  zconsole --existing {kernel.connection_file}\nCtrl-C to stop.",
            flush=True,
        )
    period = 1.0 / app.target_fps
    last = time.monotonic()
    try:
        while True:
            if parent_pid is not None and app.frame % 60 == 0 and os.getppid() != parent_pid:
                break  # the launcher is gone: do not linger as an orphan
            now = time.monotonic()
            app.tick(now - last)
            last = now
            await asyncio.sleep(max(0.0, period - (time.monotonic() - now)))
    finally:
        kernel.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zembed.demo", description="zembed's demo host")
    parser.add_argument("--name", default="zembed-demo", help="app name (default: zembed-demo)")
    parser.add_argument("--announce", action="store_true", help="print the connection file as JSON (for tools)")
    parser.add_argument("--parent-pid", type=int, help="stop when this process (the launcher) is gone")
    args = parser.parse_args(argv)
    try:
        asyncio.run(run(args.name, args.announce, args.parent_pid))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
