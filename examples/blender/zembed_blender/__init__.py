"""zembed for Blender: a kernel inside Blender, attach with
``zconsole --existing blender``.

The kernel serves ``bpy``, ``C`` (``bpy.context``) and ``D`` (``bpy.data``)
on Blender's main thread: a ``bpy.app.timers`` callback polls it (loop
"poll"), so cells run where bpy is safe to use.  The timer callback never
raises (Blender silently drops a timer that does) and ``unregister()``
removes it and stops the kernel.

In background mode (``blender -b``) timers never fire: ``start()`` refuses
and says so; scripts run there can call ``serve_blocking()`` instead.

Works as a legacy add-on (``bl_info``, Blender 3.x/4.x) and as a 4.2+
extension (``blender_manifest.toml``).
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

import bpy

bl_info = {
    "name": "zembed kernel",
    "author": "zembed",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Window > zembed Kernel; Edit > Preferences > Add-ons > zembed kernel",
    "description": "A Jupyter kernel inside Blender: attach with zconsole --existing blender",
    "category": "Development",
}

POLL_INTERVAL = 0.01  # seconds between timer calls: 100 Hz, an idle poll costs microseconds
# Set True where something else drives bpy.app.timers although Blender runs
# without its window (bpy imported as a module by a program that pumps the
# timers itself); otherwise background mode refuses to start.
ASSUME_TIMERS_FIRE = False
log = logging.getLogger("zembed.blender")

_state: dict[str, Any] = {"kernel": None, "last_error": None}


def kernel() -> Any:
    """The running kernel, or None."""
    running = _state["kernel"]
    return running if running is not None and running.running else None


def _namespace() -> dict[str, Any]:
    return {"bpy": bpy, "C": bpy.context, "D": bpy.data, "__name__": "__main__"}


def _poll() -> float | None:
    """The timer callback: run pending kernel work.  Never raises: Blender
    drops a timer whose callback raises, and the console would go silent."""
    running = _state["kernel"]
    if running is None or not running.running:
        _state["kernel"] = None
        return None  # the kernel stopped (a client shut it down): the timer ends too
    try:
        running.poll()
    except BaseException:  # noqa: BLE001  (KeyboardInterrupt included: the timer must survive)
        _state["last_error"] = traceback.format_exc()
        log.error("zembed: kernel poll failed; still serving\n%s", _state["last_error"])
    return POLL_INTERVAL


def start(name: str | None = None) -> Any:
    """Start the kernel (idempotent); return it.  Raises RuntimeError in
    background mode, where Blender's timers never fire."""
    if kernel() is not None:
        return kernel()
    if bpy.app.background and not ASSUME_TIMERS_FIRE:
        raise RuntimeError(
            "zembed: Blender runs in background mode (-b), where bpy.app.timers never fire, so a "
            "kernel started here would never answer. Run Blender with its window, or call "
            "zembed_blender.serve_blocking() from your script to serve until a client shuts it down."
        )
    import zembed

    name = name or _preferences().get("kernel_name", "blender")
    started = zembed.start_kernel(_namespace(), name=name, loop="poll")
    _state["kernel"] = started
    if not bpy.app.timers.is_registered(_poll):
        bpy.app.timers.register(_poll, first_interval=0.0, persistent=True)
    print(f"zembed: kernel {name!r} serving; attach with: zconsole --existing {name}")
    return started


def stop() -> None:
    """Stop the kernel and remove the timer (idempotent)."""
    running, _state["kernel"] = _state["kernel"], None
    if bpy.app.timers.is_registered(_poll):
        bpy.app.timers.unregister(_poll)
    if running is not None:
        running.stop()


def serve_blocking(name: str = "blender", timeout: float | None = None) -> None:
    """For ``blender -b --python script.py``: serve on this thread until a
    client shuts the kernel down (or ``timeout`` seconds pass)."""
    import zembed

    served = zembed.start_kernel(_namespace(), name=name, loop="poll")
    print(f"zembed: kernel {name!r} serving (blocking); attach with: zconsole --existing {name}", flush=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while served.running and (deadline is None or time.monotonic() < deadline):
            served.wait(0.1)
            served.poll()
    finally:
        served.stop()


def location_control(obj: Any = None) -> Any:
    """Sliders (ipywidgets) for an object's location, the active object by
    default, for a notebook attached to Blender: moving one moves the
    object in the viewport.  Runs on Blender's main thread, like every cell."""
    from ipywidgets import FloatSlider, VBox  # only when a notebook asks: the add-on runs without ipywidgets

    target = obj if obj is not None else bpy.context.view_layer.objects.active
    if target is None:
        raise RuntimeError("no active object: select one, or pass it: location_control(D.objects['Cube'])")
    sliders = []
    for axis, name in enumerate("xyz"):
        slider = FloatSlider(value=target.location[axis], min=-10.0, max=10.0, step=0.1,
                             description=f"{target.name} {name}")  # fmt: skip

        def moved(change: dict[str, Any], axis: int = axis) -> None:
            target.location[axis] = change["new"]

        slider.observe(moved, "value")
        sliders.append(slider)
    return VBox(sliders)


def _preferences() -> dict[str, Any]:
    addon = bpy.context.preferences.addons.get(__package__ or __name__)
    if addon is None or addon.preferences is None:
        return {}
    return {"kernel_name": addon.preferences.kernel_name, "autostart": addon.preferences.autostart}


def _status_text() -> str:
    running = kernel()
    if running is None:
        return "zembed kernel: stopped"
    return f"zembed kernel {running.name!r}: attach with zconsole --existing {running.name}"


class ZEMBED_OT_start(bpy.types.Operator):
    """Start a zembed kernel inside Blender"""

    bl_idname = "zembed.start_kernel"
    bl_label = "Start zembed Kernel"

    def execute(self, context: Any) -> set[str]:
        try:
            running = start()
        except Exception as exc:  # background mode, or a bad kernel name
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"zembed kernel {running.name!r}: zconsole --existing {running.name}")
        return {"FINISHED"}


class ZEMBED_OT_stop(bpy.types.Operator):
    """Stop the zembed kernel"""

    bl_idname = "zembed.stop_kernel"
    bl_label = "Stop zembed Kernel"

    def execute(self, context: Any) -> set[str]:
        stop()
        self.report({"INFO"}, "zembed kernel stopped")
        return {"FINISHED"}


class ZembedPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__ or __name__

    kernel_name: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Kernel name", default="blender", description="App name clients attach by"
    )
    autostart: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Start with Blender", default=False, description="Start the kernel when the add-on is enabled"
    )

    def draw(self, context: Any) -> None:
        layout = self.layout
        layout.prop(self, "kernel_name")
        layout.prop(self, "autostart")
        layout.label(text=_status_text())
        row = layout.row()
        row.operator(ZEMBED_OT_start.bl_idname)
        row.operator(ZEMBED_OT_stop.bl_idname)


def _menu(self: Any, context: Any) -> None:
    self.layout.separator()
    self.layout.operator(ZEMBED_OT_stop.bl_idname if kernel() else ZEMBED_OT_start.bl_idname)


CLASSES = (ZEMBED_OT_start, ZEMBED_OT_stop, ZembedPreferences)


def _autostart() -> None:
    try:
        if _preferences().get("autostart") and (ASSUME_TIMERS_FIRE or not bpy.app.background):
            start()
    except Exception:
        log.exception("zembed: autostart failed")
    return None


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.TOPBAR_MT_window.append(_menu)
    # Preferences are readable once registration is over: decide on the next timer tick.
    bpy.app.timers.register(_autostart, first_interval=0.1)


def unregister() -> None:
    stop()
    if bpy.app.timers.is_registered(_autostart):
        bpy.app.timers.unregister(_autostart)
    bpy.types.TOPBAR_MT_window.remove(_menu)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
