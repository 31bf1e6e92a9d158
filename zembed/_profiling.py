"""Profiling magics on pyinstrument: ``%profile``, ``%%profile``, ``%profile_host``.

pyinstrument's hook lives on the thread that starts it, which is what is
wanted here: cells run on the host's thread.

``%profile_host SECONDS`` starts the profiler from inside a cell and returns
at once, so the host runs its own code (frames, callbacks, its event loop)
under the profiler while the console stays usable.  When the time is up, a
timer asks the host's loop (through the loop adapter) to stop the profiler,
on the host's thread again, and the report is published as output of the
cell that asked for it.

Why a hook and not a sampling thread reading ``sys._current_frames()``: such
a sampler only gets the GIL when the host releases it, which a host whose
frame work fits in the 5 ms switch interval does in its event loop's
``select``, so it would report an idle host.  The hook's cost is stated in
docs/profiling.md (benchmarks/bench_profile_host.py).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from ._display import display
from ._magics import MagicError, _compile_statement
from ._syntax import transform

if TYPE_CHECKING:
    from ._services import KernelServices

log = logging.getLogger("zembed")

INTERVAL = 0.001  # seconds between samples


def _profiler() -> Any:
    from pyinstrument import Profiler  # imported when first used: most sessions never profile

    return Profiler(interval=INTERVAL, async_mode="disabled")


def report_bundle(profiler: Any, title: str) -> dict[str, Any]:
    """A display bundle: the interactive HTML report, and text for terminals."""
    return {
        "text/html": profiler.output_html(),
        "text/plain": f"<{title}: interactive HTML report; the call tree is printed above>",
    }


def install(kernel: KernelServices) -> None:
    namespace = kernel.namespace
    state: dict[str, Any] = {"host": None}  # the running %profile_host, if any

    def run_profiled(source: str, filename: str) -> Any:
        code, is_expression = _compile_statement(transform(source), filename)
        profiler = _profiler()
        value = None
        profiler.start()
        try:
            if is_expression:
                value = eval(code, namespace)
            else:
                exec(code, namespace)
        finally:
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False))
            display(report_bundle(profiler, "pyinstrument report"), raw=True)
        return value

    def profile_line(line: str) -> Any:
        """%profile STATEMENT: run it under pyinstrument; print the call tree and show the HTML report."""
        if not line.strip():
            raise MagicError("usage: %profile STATEMENT")
        return run_profiled(line, "<%profile>")

    def profile_cell(line: str, cell: str) -> Any:
        """%%profile: run the cell under pyinstrument; print the call tree and show the HTML report."""
        return run_profiled(cell, "<%%profile>")

    def profile_host(line: str) -> None:
        """%profile_host SECONDS: profile the host's own thread for that long while it runs; then report."""
        try:
            seconds = float(line.strip() or "5")
        except ValueError:
            raise MagicError(f"usage: %profile_host SECONDS (a number, not {line.strip()!r})") from None
        if not 0 < seconds <= 3600:
            raise MagicError("%profile_host takes between 0 and 3600 seconds")
        if state["host"] is not None:
            raise MagicError("the host is being profiled already; wait for that report")
        parent = kernel.current_parent()
        host_thread = threading.get_ident()
        profiler = _profiler()
        profiler.start()  # on the host's thread: this cell runs there

        def finish() -> None:  # on the host's thread, through the loop adapter
            if state["host"] is not timer:
                return
            state["host"] = None
            try:
                profiler.stop()
                text = profiler.output_text(unicode=True, color=False)
                kernel.outbox.publish("stream", {"name": "stdout", "text": text}, parent)
                bundle = report_bundle(profiler, f"host profile, {seconds:g} s")
                kernel.outbox.publish("display_data", {"data": bundle, "metadata": {}, "transient": {}}, parent)
                kernel.outbox.flush_soon()
            except Exception:
                log.exception("zembed: %profile_host could not finish its report")

        def abandon() -> None:  # the kernel stops first: no report, and no profiler left running
            timer.cancel()
            if state["host"] is timer and threading.get_ident() == host_thread:
                state["host"] = None
                profiler.stop()

        timer = threading.Timer(seconds, kernel.call_on_host, args=(finish,))
        timer.daemon = True
        state["host"] = timer
        kernel.on_stop(abandon)
        timer.start()
        print(f"Profiling the host's thread for {seconds:g} s; the report will follow here.")

    kernel.register_magic("profile", profile_line)
    kernel.register_magic("profile", profile_cell, cell=True)
    kernel.register_magic("profile_host", profile_host)
