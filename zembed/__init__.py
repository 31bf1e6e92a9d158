"""zembed: a Jupyter kernel embedded in a running host application.

import zembed
kernel = zembed.start_kernel(namespace, name="myapp")  # returns at once
...                                                    # the host runs its loop
kernel.stop()
"""

from ._api import serve, start_kernel
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

# The client side (scripts driving a host) loads on first use: a host that
# only serves never pays for it, nor for asyncio, at start-up.
_CLIENT_NAMES = {"AsyncClient", "Client", "HostDied", "RemoteError", "Result", "connect", "connect_async"}


def __getattr__(name: str) -> object:
    if name in _CLIENT_NAMES:
        from . import _client

        return getattr(_client, name)
    raise AttributeError(f"module 'zembed' has no attribute {name!r}")


__all__ = [
    "AsyncClient",
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
    "connect_async",
    "display",
    "serve",
    "start_kernel",
]
