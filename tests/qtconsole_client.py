"""qtconsole, offscreen, started on a kernelspec as its users start it:
runs one cell, waits for its output in the widget, saves a screenshot.

    QT_QPA_PLATFORM=offscreen QT_API=pyside6 python qtconsole_client.py KERNEL CODE EXPECTED SHOT

Prints one JSON line: the widget's text and whether EXPECTED appeared."""

from __future__ import annotations

import json
import sys
import time

from qtconsole.manager import QtKernelManager
from qtconsole.rich_jupyter_widget import RichJupyterWidget
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication

kernel, code, expected, shot = sys.argv[1:5]
app = QApplication([])
manager = QtKernelManager(kernel_name=kernel)
manager.start_kernel()
client = manager.client()
client.start_channels()
widget = RichJupyterWidget()
widget.kernel_manager, widget.kernel_client = manager, client
widget.resize(900, 500)
widget.show()
deadline = time.monotonic() + 40
state = {"sent": False, "iopub": False}
# iopub is a subscription: until a message arrives on it, output may be missed (ZeroMQ's slow joiner).
client.iopub_channel.message_received.connect(lambda msg: state.__setitem__("iopub", True))


def step() -> None:
    text = widget._control.toPlainText()
    # The banner and the first, empty prompt are there and nothing runs: the console is ready for input.
    ready = text.rstrip().endswith("In [1]:") and not widget._executing and state["iopub"]
    if not state["sent"] and ready:
        widget.execute(code)
        state["sent"] = True
    found = state["sent"] and expected in text.split(code, 1)[-1]
    if found or time.monotonic() > deadline:
        widget.grab().save(shot)
        print(json.dumps({"found": found, "text": text}), flush=True)
        client.stop_channels()
        manager.shutdown_kernel()
        app.quit()


timer = QTimer()
timer.timeout.connect(step)
timer.start(100)
app.exec()
