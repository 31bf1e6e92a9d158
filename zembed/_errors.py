"""The exceptions zembed raises, in two families.

``UsageError`` means the host or a script misused the API (wrong argument,
no loop to attach to).  ``ProtocolError`` means a peer misbehaved (bad
signature, malformed frames); the kernel catches these, logs them and keeps
serving, so a host only meets them when it parses messages itself.
"""

from __future__ import annotations


class ZembedError(Exception):
    """Base class of every exception zembed raises on purpose."""


class UsageError(ZembedError, ValueError):
    """The API was called wrongly: the message says how to call it."""


class ConnectionFileError(ZembedError, OSError):
    """A connection file is missing, unreadable or not Jupyter's format."""


class ProtocolError(ZembedError):
    """A peer sent something the Jupyter protocol does not allow."""


class MalformedMessage(ProtocolError):
    """Frames that do not form a Jupyter message (delimiter, JSON, types).

    ``request`` is the signed message as far as it could be read (its header
    intact, the rest empty) when only a later part was malformed: the kernel
    can still answer it with an error reply.  None otherwise."""

    def __init__(self, message: str, request: object = None) -> None:
        super().__init__(message)
        self.request = request


class BadSignature(ProtocolError):
    """A message whose HMAC signature is missing or wrong."""


class ReplayedMessage(ProtocolError):
    """A correctly signed message whose signature was seen before."""


class StdinNotAvailable(ZembedError, RuntimeError):
    """``input()`` was called but the requesting client does not accept input."""


class KernelStopped(ZembedError, RuntimeError):
    """The kernel has stopped; it no longer serves requests."""
