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
state = {"sent": False}


def step() -> None:
    text = widget._control.toPlainText()
    if not state["sent"] and "In [" in text:  # the banner and first prompt are there: the kernel answered
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
