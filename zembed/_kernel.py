"""The embedded kernel: lifecycle, and the hand-off between threads.

Two threads matter.  The socket thread (``_sockets``) receives and verifies
every request.  Requests that need only kernel state (``kernel_info``,
``interrupt``, ``shutdown``) are answered right there, so they are served
while a cell runs.  Everything that touches the host's objects goes to the
``HostQueue`` (``_host_queue``) and runs on the host's thread through the
loop adapter (``loops``), at most ``poll_budget`` seconds of it per visit.
Which is which is ``_routing``'s decision, handlers live in ``_handlers``,
what they send goes through the ``Outbox`` (``_outbox``), a cell's run is
``_cell``'s.  This module is the kernel's lifecycle and its public API.

Nothing here changes process-wide state; ``_cell`` does, only while user
code runs, and restores it.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from ._binding import (
    Endpoint,
    claim_connection_file,
    curve_keypair_for,
    endpoint_for,
    release_connection_file,
    remove_own_connection_file,
    served_fields,
)
from ._cell import Cells
from ._comms import Comms, TargetCallback
from ._config import KernelConfig
from ._connection import app_data_dir, write_connection_file
from ._errors import ConnectionFileError, UsageError
from ._kernel_history import History
from ._outbox import Outbox
from ._private import private_dir
from ._protocol import SIGNATURE_SCHEME, Message, Session, utc_now
from ._recovery import RunRecord, collect, notice, take_unannounced, unhandled_exception
from ._routing import Router
from ._sockets import SocketThread
from ._zmq_io import bind_sockets
from .loops import LoopAdapter, PollLoop

log = logging.getLogger("zembed")

ShutdownHook = Callable[["Kernel", bool], None]
ErrorHook = Callable[["Kernel", BaseException], None]

if TYPE_CHECKING:
    from ._debugger import Debugger
    from ._engine import Engine
    from ._magics import Magics


class Kernel:
    """A running embedded kernel.  Made by ``zembed.start_kernel``."""

    outbox: Outbox  # made in _open, with the socket thread it sends through

    def __init__(
        self,
        namespace: dict[str, Any],
        config: KernelConfig,
        adapter: LoopAdapter,
        on_shutdown: ShutdownHook | None = None,
        on_error: ErrorHook | None = None,
    ) -> None:
        self.namespace = namespace
        self.name: str = config.name
        self.config = config
        self.execution_count = 0
        self.app_dir = app_data_dir(config.name, config.data_dir)
        # Earlier runs that ended badly, announced by this one (``_recovery.notice``)
        self.crashes: list[dict[str, Any]] = []
        self._record: RunRecord | None = None
        self._magics: Magics | None = None  # made on first use: see the magics property
        self.started = time.monotonic()
        self._adapter = adapter
        self._on_shutdown = on_shutdown
        self._on_error = on_error
        # Why the kernel stopped serving on its own (its socket thread
        # failed), or None: ``running`` is False from then on.
        self.failure: BaseException | None = None
        self.cells = Cells()  # the running cell, and the leaves swapped in while it runs
        self.comms = Comms(self)  # comm targets and open comms (widgets)
        self.debugger: Debugger | None = None  # the Jupyter debug protocol: made by the first debug_request
        self._stop_requested = False  # stop() was called from a cell: stop once its request is answered
        self._stop_callbacks: list[Callable[[], None]] = []
        self._stop_lock = threading.Lock()
        self._engine: Engine | None = None  # this host's membership of a cluster (join_cluster)
        self._stopped = False

        self.connection_file: Path = claim_connection_file(config)
        try:
            endpoint = endpoint_for(config, self.connection_file)
            curve = curve_keypair_for(config, endpoint.transport, endpoint.ip)
            self.session = Session(endpoint.key)
            self._launcher = endpoint.launcher
            self._open(config, adapter, curve, endpoint)
        except BaseException:
            release_connection_file(self.connection_file)
            raise
        atexit.register(self._stop_at_exit)
        self.outbox.publish("status", {"execution_state": "starting"})
        log.info("zembed: kernel %r serving on %s (loop: %s)", self.name, self.connection_file, adapter.name)
        if config.name_derived:
            log.info("zembed: app name %r comes from the program's name; pass name= to choose one", self.name)
        for crash in self.crashes:
            log.warning("zembed: %s (zembed crashes %s)", crash["text"], self.name)
        if config.cluster:
            try:
                self.join_cluster(config.cluster)
            except UsageError as exc:  # the kernel serves on: a bad cluster file costs the cluster only
                log.error("zembed: %s", exc)

    def _open(
        self,
        config: KernelConfig,
        adapter: LoopAdapter,
        curve: tuple[bytes, bytes] | None,
        endpoint: Endpoint,
    ) -> None:
        """Bind, start the threads, write the connection file; undo it all on failure."""
        ip = endpoint.ip
        if endpoint.transport == "ipc":
            # Jupyter's ipc convention: "ip" is a path prefix.  The default
            # loopback address means "next to the connection file".
            if ip == "127.0.0.1":
                ip = str(self.connection_file.with_suffix("")) + "-ipc"
            private_dir(Path(ip).parent)  # the socket files live there
        context: zmq.Context[Any] = zmq.Context()
        self._context = context  # the engine of a cluster (join_cluster) has its sockets here too
        try:
            sockets, bound = bind_sockets(
                context, endpoint.transport, ip, endpoint.ports, config.max_message_bytes, curve[1] if curve else None
            )
        except BaseException:
            context.term()
            raise
        self.connection_info: dict[str, Any] = {
            **{f"{c}_port": p for c, p in bound.items()},
            "ip": ip,
            "key": endpoint.key.decode("utf-8"),
            "transport": endpoint.transport,
            "signature_scheme": SIGNATURE_SCHEME,
            "kernel_name": "zembed",
            "zembed": {
                "app": self.name,
                "pid": os.getpid(),
                "started": utc_now(),
                "loop": adapter.name,
                "app_dir": str(self.app_dir),
            },
        }
        if curve:
            self.connection_info["curve_publickey"] = curve[0].decode("ascii")
            self.connection_info["curve_secretkey"] = curve[1].decode("ascii")
        self._sockets = SocketThread(context, sockets, self.session, self._on_socket_failure)
        self.history = History(
            self.app_dir / "history.sqlite" if config.persistent_history else None,
            config.history_limit,
            on_commit=self._sockets.flush_soon,  # replies waiting for the commit can go
            pid=os.getpid(),
        )
        self.outbox = Outbox(self.session, self._sockets, self.history)
        self._router = Router(
            self, adapter, halted=lambda: self._stopped or self._stop_requested, after_batch=self._after_batch
        )
        self._queue = self._router.queue
        if config.crash_recovery:
            self._start_recovery()
        self._sockets.serve(self._router, after_sending=self.history.commit_due)
        try:
            write_connection_file(self.connection_file, served_fields(self._launcher, self.connection_info))
        except BaseException as exc:
            self._sockets.stop()
            self.history.close()
            if self._record is not None:
                self._record.close()
            if isinstance(exc, OSError):
                raise ConnectionFileError(
                    f"cannot write the connection file {self.connection_file}: {exc.strerror or exc}"
                ) from exc
            raise

    def _start_recovery(self) -> None:
        """Explain earlier runs that ended badly, then keep our own record.
        A data dir that cannot be written costs the recovery, not the kernel."""
        try:
            collect(self.app_dir)
            reports = take_unannounced(self.app_dir)
            for report in reports:  # the cell that killed the host may not have reached the history
                cell = report.get("cell") or {}
                if cell.get("session") and isinstance(cell.get("execution_count"), int):
                    self.history.recover(cell["session"], cell["execution_count"], str(cell.get("code", "")))
            self.crashes = [notice(report) for report in reports]
            self._record = RunRecord(self.app_dir, self.name, self.connection_file)
            self.cells.notes = self._record
        except OSError as exc:
            log.warning("zembed: crash recovery is off: cannot write %s (%s)", self.app_dir, exc)

    def _stop_at_exit(self) -> None:
        # The interpreter is ending: an unhandled exception may be the reason.
        self._stop(unhandled_exception())

    # -- public API --------------------------------------------------------

    @property
    def loop(self) -> str:
        """Name of the host loop adapter in use."""
        return self._adapter.name

    @property
    def running(self) -> bool:
        """True while the kernel serves: not stopped, not detached by a
        client, and its socket thread alive (see ``failure``)."""
        return not self._stopped and not self.detached and self.failure is None

    def poll(self) -> bool:
        """Run pending kernel work now, on this thread; True if any ran.

        For ``loop="poll"`` hosts: call it from your frame loop or timer.
        Costs microseconds when nothing is pending.
        """
        adapter = self._adapter
        if not isinstance(adapter, PollLoop):
            raise UsageError(f"poll() is for loop='poll' kernels; this one runs on {adapter.name!r}")
        return adapter.run_pending()

    def wait(self, timeout: float | None = None) -> bool:
        """For ``loop="poll"``: block until work is pending (or ``timeout``)."""
        adapter = self._adapter
        if not isinstance(adapter, PollLoop):
            raise UsageError("wait() is for loop='poll' kernels")
        return adapter.wait(timeout)

    def interrupt(self) -> bool:
        """Raise KeyboardInterrupt in the running cell, or, when a cell was
        sent but has not started yet, in that cell as it starts (a Ctrl-C
        right after Enter); False if there is neither."""
        waiting = self._queue.has("execute_request")
        if self.debugger is not None and self.debugger.resume_then(lambda: self.cells.interrupt(waiting)):
            return True  # stopped at a breakpoint: it runs on, then the interrupt lands
        return self.cells.interrupt(waiting)

    def stop(self) -> None:
        """Close sockets, join threads, remove the connection file.  Idempotent.

        Called from a cell (``kernel.stop()``, or a GUI's quit handler the
        cell set off), the stop waits until that request is answered: its
        reply and output still reach the client."""
        self._stop(None)

    def _stop(self, unhandled: BaseException | None) -> None:
        if self._queue.in_batch:
            self._stop_requested = True
            return
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self.outbox.closed = True
        atexit.unregister(self._stop_at_exit)
        self.leave_cluster()  # before the context closes with the socket thread
        for callback in self._stop_callbacks:
            try:
                callback()
            except Exception:
                log.exception("zembed: a stop callback failed")
        if self.debugger is not None:
            self.debugger.close()
        self.cells.close()
        # The file goes first: a client that sees the heartbeat stop and
        # the file gone knows the kernel was stopped, not killed.
        self._remove_own_file()
        self._sockets.stop()
        release_connection_file(self.connection_file)
        self._adapter.close()
        self._queue.clear()
        self.history.close()
        if self._record is not None:
            self._record.close(unhandled)
        log.info("zembed: kernel %r stopped", self.name)

    def _remove_own_file(self) -> None:
        remove_own_connection_file(self.connection_file, self.connection_info["key"], self._launcher)

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<zembed.Kernel {self.name!r} {state} loop={self.loop} file={str(self.connection_file)!r}>"

    def call_on_host(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the host's thread soon (any thread may call this)."""
        if not self._stopped:
            self._adapter.call_soon(callback)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the kernel stops (from the thread calling stop())."""
        self._stop_callbacks.append(callback)

    def current_parent(self) -> dict[str, Any] | None:
        """The header of the request whose cell is running, if any."""
        return self.cells.current_parent()

    @property
    def executing(self) -> bool:
        """True while a cell runs on the host's thread."""
        return self.cells.executing

    @property
    def magics(self) -> Magics:
        """The kernel's magics, built-ins included (loaded on first use: a
        host whose users never type ``%`` does not pay for them)."""
        if self._magics is None:
            from ._magics import Magics, install_builtins
            from ._profiling import install as install_profiling

            self._magics = Magics()
            install_builtins(self)
            install_profiling(self)
        return self._magics

    def register_magic(
        self, name: str, function: Callable[..., Any], *, cell: bool = False, help: str | None = None
    ) -> None:
        """Add ``%name`` (``function(line)``) or, with ``cell=True``,
        ``%%name`` (``function(line, cell)``).  Its value is shown like a
        cell's; the docstring (or ``help``) is what ``%magic`` and ``%name?``
        show.  Runs on the host's thread, like every cell."""
        self.magics.register(name, function, cell=cell, help=help)

    def register_comm_target(self, name: str, callback: TargetCallback) -> None:
        """Call ``callback(comm, message)`` on the host's thread when a
        frontend opens a comm with target ``name``; ``comm.on_msg(f)`` then
        receives its messages, ``comm.send(data)`` (from any thread)
        answers.  ipywidgets' targets register themselves."""
        self.comms.register_target(name, callback)

    def join_cluster(
        self,
        url_file: str | os.PathLike[str] | None = None,
        *,
        profile: str | None = None,
        profile_dir: str | os.PathLike[str] | None = None,
        cluster_id: str = "",
    ) -> None:
        """Join an ipyparallel cluster as an engine: ``url_file`` is the
        controller's ``ipcontroller-engine.json``; or name the controller's
        IPython ``profile`` (or ``profile_dir``) and ``cluster_id``, as
        ``ipengine`` takes them.  Returns at once; the engine registers (and
        re-registers after a controller restart) on a thread of its own, and
        runs what clients send on the host's thread.  Raises
        ``ClusterError`` for a file that cannot be used; joining again
        first leaves the cluster this host is in."""
        from ._cluster_file import ClusterError, engine_file_for
        from ._engine import Engine

        if url_file is None:
            url_file = engine_file_for(profile, profile_dir, cluster_id)
        elif profile is not None or profile_dir is not None or cluster_id:
            raise ClusterError("cluster: give the engine file, or a profile and cluster id, not both")
        engine = Engine(self, url_file, self._context)
        self.leave_cluster()
        self._engine = engine
        engine.start()

    def leave_cluster(self) -> None:
        """Unregister from the cluster, if this host is in one."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.stop()

    @property
    def cluster(self) -> dict[str, Any] | None:
        """This host's cluster membership (controller file, engine id,
        state), or None."""
        return None if self._engine is None else self._engine.status()

    def status(self) -> dict[str, Any]:
        """What ``%zembed`` shows."""
        return {
            "app": self.name,
            "pid": os.getpid(),
            "loop": self.loop,
            "connection file": str(self.connection_file),
            "clients attached": self.subscribers,
            "messages handled": self.messages_handled,
            "host thread time": f"{self._queue.host_seconds:.3f} s",
            "uptime": f"{time.monotonic() - self.started:.0f} s",
            "execution count": self.execution_count,
            **({"cluster": _cluster_text(self._engine.status())} if self._engine is not None else {}),
        }

    def host_busy_seconds(self) -> float:
        """How long the host's thread has not come back for kernel work: a
        request waiting for it, a cell running, or (poll hosts) no
        ``poll()`` call."""
        since = [t for t in (self._queue.waiting_since, self.cells.started, self._router.last_poll()) if t is not None]
        return max(0.0, time.monotonic() - min(since)) if since else 0.0

    @property
    def detached(self) -> bool:
        """True once a client's ``shutdown_request`` ended serving (the host lives on)."""
        return self._router.detached

    @property
    def messages_handled(self) -> int:
        """Requests (and stdin replies) received since the start."""
        return self._router.messages

    @property
    def subscribers(self) -> int:
        """iopub subscriptions now: attached clients, in practice."""
        return self._router.subscribers

    def running_cell(self) -> dict[str, Any] | None:
        """The cell on the host's thread now: whose, which, for how long,
        and whether it waits for input (``kernel_info`` says this)."""
        return self.cells.running_cell()

    # -- ends not asked for by the host -----------------------------------

    def _on_socket_failure(self, exc: BaseException) -> None:
        """The socket thread is ending by an exception (on that thread):
        nobody can reach this kernel any more, so say so and make sure no
        client finds a ghost.  The host learns through ``running``,
        ``failure``, the log and ``on_error``; the rest of the stop runs on
        the host's thread."""
        self._remove_own_file()  # first: whoever sees ``failure`` set finds no ghost file
        self.failure = exc
        log.error("zembed: kernel %r stopped serving: %s: %s", self.name, type(exc).__name__, exc)

        self._adapter.call_soon(lambda: self._tell_host_then_stop("on_error", self._on_error, exc))

    def detach(self, restart: bool) -> None:
        """End serving after a remote ``shutdown_request``; the host lives on."""
        self._router.detached = True
        self._remove_own_file()
        self._sockets.stop()  # from its own thread: flags it, returns at once
        self._adapter.call_soon(lambda: self._tell_host_then_stop("on_shutdown", self._on_shutdown, restart))

    def _tell_host_then_stop(self, what: str, hook: Callable[[Kernel, Any], None] | None, argument: Any) -> None:
        """On the host's thread: the host's ``on_shutdown``/``on_error``, then the stop."""
        try:
            if hook is not None:
                hook(self, argument)
        except Exception:
            log.exception("zembed: the host's %s callback failed", what)
        finally:
            self.stop()

    # -- host thread -------------------------------------------------------

    def _after_batch(self) -> None:
        if self._stop_requested:  # a cell of the batch stopped the kernel: its reply is out now
            self.stop()

    def take_queued(self, predicate: Callable[[str, Message], bool]) -> list[tuple[str, Message]]:
        """Remove and return queued requests matching ``predicate`` (host thread)."""
        return self._queue.take(predicate)


def _cluster_text(membership: dict[str, Any]) -> str:
    engine = membership["engine_id"]
    return f"engine {engine if engine is not None else '?'} of {membership['controller']} ({membership['state']})"
