"""The seam a frontend builds on: what zconsole and zjupyter (and any
frontend to come) use of zembed, named once.

A frontend finds kernels (``resolve``, ``KernelRecord``), reads connection
files (``read_connection_file``), speaks the wire format (``Session``,
``Message``), opens client sockets the way every zembed client does (Curve
included: ``open_client_sockets``, ``connect_socket``), tells a dead host
from a stopped one (``pid_gone``, ``report_for``, ``describe_crash``),
keeps its own files private (``private_dir``, ``open_private``) and lists
kernels as ``zembed list`` does.  Frontends import this module only, never
zembed's private modules: what is here is kept stable for them.
"""

from __future__ import annotations

from ._connection import connect as connect_socket
from ._connection import open_client_sockets, read_connection_file, runtime_dir
from ._discovery import KernelRecord, resolve
from ._errors import ConnectionFileError, ProtocolError
from ._listing import closed_pipe_is_quiet, list_command
from ._private import open_private, private_dir
from ._process import pid_gone
from ._protocol import Message, Session
from ._recovery import describe as describe_crash
from ._recovery import report_for
from ._version import __version__

__all__ = [
    "ConnectionFileError",
    "KernelRecord",
    "Message",
    "ProtocolError",
    "Session",
    "__version__",
    "closed_pipe_is_quiet",
    "connect_socket",
    "describe_crash",
    "list_command",
    "open_client_sockets",
    "open_private",
    "pid_gone",
    "private_dir",
    "read_connection_file",
    "report_for",
    "resolve",
    "runtime_dir",
]
