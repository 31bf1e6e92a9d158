"""Boot script for the real Blender (``blender --python blender_boot.py``).

Puts zembed, its dependencies and the add-on on Blender's ``sys.path``
($ZEMBED_TEST_PATHS), enables the add-on as a user would, starts the kernel
through the add-on's operator from a timer (inside Blender's own loop), and
writes {"connection_file", "pid"} to $ZEMBED_ANNOUNCE.
"""

import json
import os
import sys

for path in os.environ.get("ZEMBED_TEST_PATHS", "").split(os.pathsep):
    if path and path not in sys.path:
        sys.path.append(path)

import addon_utils  # noqa: E402
import bpy  # noqa: E402

addon_utils.enable("zembed_blender", default_set=True)
bpy.context.preferences.addons["zembed_blender"].preferences.kernel_name = os.environ.get("ZEMBED_NAME", "blender")


def start() -> None:
    result = bpy.ops.zembed.start_kernel()
    kernel = sys.modules["zembed_blender"].kernel()
    announce = {"connection_file": str(kernel.connection_file), "pid": os.getpid(), "operator": sorted(result)}
    with open(os.environ["ZEMBED_ANNOUNCE"], "w") as file:
        json.dump(announce, file)
    return None


bpy.app.timers.register(start, first_interval=0.2)
