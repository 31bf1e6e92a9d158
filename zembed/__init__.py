"""zembed: a Jupyter kernel embedded in a running host application.

import zembed
kernel = zembed.start_kernel(namespace, name="myapp")  # returns at once
...                                                    # the host runs its loop
kernel.stop()
"""

from ._api import serve, start_kernel
from ._client import Client, HostDied, RemoteError, Result, connect
from ._config import KernelConfig
from ._display import DisplayHandle, clear_output, display
from ._errors import (
    BadSignature,
    ConnectionFileError,
    KernelStopped,
    MalformedMessage,
    ProtocolError,
    ReplayedMessage,
    StdinNotAvailable,
    UsageError,
    ZembedError,
)
from ._kernel import Kernel
from ._version import __version__

__all__ = [
    "BadSignature",
    "Client",
    "ConnectionFileError",
    "DisplayHandle",
    "HostDied",
    "Kernel",
    "KernelConfig",
    "KernelStopped",
    "MalformedMessage",
    "ProtocolError",
    "RemoteError",
    "ReplayedMessage",
    "Result",
    "StdinNotAvailable",
    "UsageError",
    "ZembedError",
    "__version__",
    "clear_output",
    "connect",
    "display",
    "serve",
    "start_kernel",
]
