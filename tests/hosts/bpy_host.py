"""Blender as a Python module (PyPI's bpy) with the zembed add-on enabled.

bpy's timers never fire in module mode, so this host stands in for
Blender's window-manager loop: it replaces ``bpy.app.timers`` with a pump
that follows Blender's rules (a float return re-arms the timer after that
many seconds; None, another value or an exception unregisters it, silently)
and drives it until no timer is left or 120 s pass.

Prints {"connection_file", "pid"} once the add-on's kernel serves, and
"timers left: [...]" at the end.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import bpy

ROOT = Path(__file__).resolve().parents[2]


class TimerPump:
    """bpy.app.timers, as Blender's event loop runs them."""

    def __init__(self) -> None:
        self.due: dict[object, float] = {}

    def register(self, function, first_interval: float = 0.0, persistent: bool = False) -> None:
        self.due[function] = time.monotonic() + first_interval

    def unregister(self, function) -> None:
        if function not in self.due:
            raise ValueError("Error: function is not registered")  # as Blender says
        del self.due[function]

    def is_registered(self, function) -> bool:
        return function in self.due

    def run_due(self) -> None:
        now = time.monotonic()
        for function, when in list(self.due.items()):
            if when > now or function not in self.due:
                continue
            try:
                again = function()
            except Exception:
                again = None  # Blender prints the error and drops the timer
            if function not in self.due:
                continue  # it unregistered itself
            if isinstance(again, (int, float)) and not isinstance(again, bool):
                self.due[function] = now + float(again)
            else:
                del self.due[function]


def main() -> None:
    pump = TimerPump()
    bpy.app.timers.register = pump.register
    bpy.app.timers.unregister = pump.unregister
    bpy.app.timers.is_registered = pump.is_registered
    sys.path.insert(0, str(ROOT / "examples" / "blender"))

    import addon_utils

    addon_utils.enable("zembed_blender", default_set=True, handle_error=None)
    zembed_blender = sys.modules["zembed_blender"]
    zembed_blender.ASSUME_TIMERS_FIRE = True  # this pump is Blender's loop here
    bpy.context.preferences.addons["zembed_blender"].preferences.kernel_name = sys.argv[1]
    kernel = zembed_blender.start()
    line = json.dumps({"connection_file": str(kernel.connection_file), "pid": os.getpid()})
    os.write(1, (line + "\n").encode())
    deadline = time.monotonic() + 120
    while pump.due and time.monotonic() < deadline:
        pump.run_due()
        time.sleep(0.002)
    names = sorted(getattr(function, "__name__", repr(function)) for function in pump.due)
    print(f"timers left: {names}", flush=True)


if __name__ == "__main__":
    main()
