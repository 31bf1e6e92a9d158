"""The Jupyter wire format (messaging spec 5.5), with no I/O.

Owns: building headers, signing and serializing a message into frames, and
parsing and verifying frames into a ``Message``.  Nothing here imports zmq;
the socket threads hand frames in and take frames out.

Spec, "The Wire Protocol": ``[idents..., b"<IDS|MSG>", signature, header,
parent_header, metadata, content, buffers...]``, where the signature is the
hex HMAC-SHA256 of the four serialized dicts, in that order.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ._errors import BadSignature, MalformedMessage, ReplayedMessage

try:  # orjson: 3-5x faster on large outputs; jupyter_client uses it too when present
    import orjson
except ImportError:  # pragma: no cover - exercised by test_protocol's fallback test
    orjson = None  # type: ignore[assignment]

PROTOCOL_VERSION = "5.5"
DELIMITER = b"<IDS|MSG>"
SIGNATURE_SCHEME = "hmac-sha256"

Dict = dict[str, Any]


@dataclass
class Message:
    """One parsed message.  ``idents`` are the ROUTER routing frames."""

    header: Dict
    parent_header: Dict = field(default_factory=dict)
    metadata: Dict = field(default_factory=dict)
    content: Dict = field(default_factory=dict)
    buffers: list[bytes] = field(default_factory=list)
    idents: list[bytes] = field(default_factory=list)

    @property
    def msg_type(self) -> str:
        return str(self.header["msg_type"])

    @property
    def msg_id(self) -> str:
        return str(self.header["msg_id"])


def new_key() -> bytes:
    """A fresh 256-bit signing key, hex-encoded as Jupyter stores it."""
    return os.urandom(32).hex().encode("ascii")


def utc_now() -> str:
    """ISO 8601 with a ``Z`` suffix, as jupyter_client writes dates."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def json_bytes(obj: Any) -> bytes:
    """JSON bytes of ``obj``.  Raises for what no JSON can say (nesting past
    the interpreter's limit, a value that contains itself, keys that are
    not scalars) and for what a user's ``__repr__`` raises in the fallback:
    ``Session.serialize_safely`` is the caller that cannot fail."""
    if orjson is not None:
        try:
            return orjson.dumps(obj, default=_json_fallback, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # lone surrogates, ints beyond 64 bits, over 255 levels: the stdlib copes
            pass
    text = json.dumps(obj, ensure_ascii=False, default=_json_fallback)
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate in user output: never drop the message
        return text.encode("utf-8", "replace")


def _loads(raw: bytes) -> Any:
    if orjson is not None:
        try:
            return orjson.loads(raw)
        except ValueError:  # NaN/Infinity, which older clients send: the stdlib accepts them
            pass
    return json.loads(raw)


def _json_fallback(obj: Any) -> Any:
    # Content is built by zembed itself, so this only meets odd user values
    # (user_expressions, metadata): degrade to text rather than fail a reply.
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return repr(obj)


def plain_fields(value: Dict | None) -> Dict:
    """The fields of a header (or metadata) whose values are plain JSON scalars."""
    if not isinstance(value, dict):
        return {}
    return {
        k: v
        for k, v in value.items()
        if isinstance(k, str)
        and (v is None or isinstance(v, (str, bool, float)) or (isinstance(v, int) and abs(v) < 2**63))
    }


def _unwritable_content(msg_type: str) -> Dict:
    return {
        "status": "error",
        "ename": "UnserializableContent",
        "evalue": f"the {msg_type} could not be written as JSON",
        "traceback": [],
    }


def decode_object(name: str, raw: bytes) -> Dict:
    """One of the four dict frames, decoded; ``MalformedMessage`` if it is not one."""
    try:
        value = _loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedMessage(f"{name} is not JSON: {str(exc)[:200]}") from None
    except RecursionError:  # the stdlib parser's limit, after orjson's (1,024 levels) refused it
        raise MalformedMessage(f"{name} nests too deeply") from None
    if not isinstance(value, dict):
        raise MalformedMessage(f"{name} is {type(value).__name__}, not an object")
    return value


class Session:
    """Signs outgoing and verifies incoming messages for one kernel.

    ``replay_window`` bounds how many recent signatures are remembered to
    reject replays (jupyter_client keeps 2**16 as well).
    """

    def __init__(self, key: bytes, *, username: str = "zembed", replay_window: int = 2**16) -> None:
        if not key:
            raise ValueError("an empty key would accept unsigned messages; zembed always signs")
        self.key = key
        self.session_id = uuid.uuid4().hex
        # msg_id: the session id and a counter, unique like a uuid but cheaper
        self._next_id = itertools.count(1).__next__
        self._id_prefix = f"{self.session_id}_{os.getpid()}_"
        self.username = username
        self._hmac = hmac.new(key, digestmod=hashlib.sha256)
        # Seen signatures, kept as their hash: a third of the memory, and
        # unforgeable (the hash is keyed per process, signatures are HMACs).
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()
        self._replay_window = replay_window

    # -- outgoing ---------------------------------------------------------

    def header(self, msg_type: str) -> Dict:
        return {
            "msg_id": f"{self._id_prefix}{self._next_id()}",
            "session": self.session_id,
            "username": self.username,
            "date": utc_now(),
            "msg_type": msg_type,
            "version": PROTOCOL_VERSION,
        }

    def sign(self, parts: list[bytes]) -> bytes:
        mac = self._hmac.copy()
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode("ascii")

    def serialize_safely(
        self,
        msg_type: str,
        content: Dict,
        parent: Dict | None = None,
        metadata: Dict | None = None,
        idents: list[bytes] | None = None,
        header: Dict | None = None,
        buffers: list[bytes] | None = None,
    ) -> tuple[list[bytes], str | None]:
        """``serialize``, degrading instead of failing: frames, and what had
        to be given up (None when nothing).

        A request's header comes back as its reply's parent, so a peer can
        put anything there (nesting too deep to write back, say).  Then the
        parent keeps only its plain fields (``msg_id``, ``session``, ...:
        what clients match replies by), and if the content itself cannot be
        written, a reply says why instead (spec: error replies carry
        ``ename``/``evalue``).  Never raises for what a peer sent.
        """
        try:  # the message as it is: what every message but a hostile peer's is
            return self.serialize(msg_type, content, parent, metadata, idents, buffers, header), None
        except Exception as exc:  # also what a user object's __repr__ raises in the fallback
            failure: Exception = exc
        # Only now are the fallbacks made: building them for every message cost
        # about 5 µs each, five times per execute.
        fallbacks: list[tuple[Dict, Dict | None, Dict | None, str]] = [
            (content, plain_fields(parent), plain_fields(metadata), "the parent header or metadata"),
            (_unwritable_content(msg_type), plain_fields(parent), None, "the content"),
        ]
        for body, parent_used, metadata_used, given_up in fallbacks:
            try:
                return (
                    self.serialize(msg_type, body, parent_used, metadata_used, idents, buffers, header),
                    given_up,
                )
            except Exception as exc:
                failure = exc
        raise ValueError(f"cannot serialize a {msg_type} at all: {failure}")

    def serialize(
        self,
        msg_type: str,
        content: Dict,
        parent: Dict | None = None,
        metadata: Dict | None = None,
        idents: list[bytes] | None = None,
        buffers: list[bytes] | None = None,
        header: Dict | None = None,
    ) -> list[bytes]:
        """Frames ready for ``send_multipart``."""
        parts = [
            json_bytes(header or self.header(msg_type)),
            json_bytes(parent or {}),
            json_bytes(metadata or {}),
            json_bytes(content),
        ]
        return [*(idents or []), DELIMITER, self.sign(parts), *parts, *(buffers or [])]

    # -- incoming ---------------------------------------------------------

    def verify(self, frames: list[bytes]) -> tuple[list[bytes], list[bytes], list[bytes]]:
        """Check the signature and the replay window, decoding nothing:
        ``(idents, the four dict frames, buffers)``.  A relay re-signs
        these with ``signed`` for the other side, unread."""
        try:
            split = frames.index(DELIMITER)
        except ValueError:
            raise MalformedMessage("no <IDS|MSG> delimiter") from None
        if len(frames) - split - 1 < 5:
            raise MalformedMessage(f"{len(frames) - split - 1} frames after the delimiter, need at least 5")
        signature, parts = frames[split + 1], frames[split + 2 : split + 6]
        self._authenticate(signature, parts)
        return frames[:split], parts, frames[split + 6 :]

    def _authenticate(self, signature: bytes, parts: list[bytes]) -> None:
        if not signature:
            raise BadSignature("unsigned message")
        if not hmac.compare_digest(signature, self.sign(parts)):
            raise BadSignature("signature does not match")
        seen = hash(signature)
        if seen in self._seen:
            raise ReplayedMessage("signature seen before")
        self._remember(seen)

    def signed(self, idents: list[bytes], parts: list[bytes], buffers: list[bytes]) -> list[bytes]:
        """Frames for the four dict frames ``parts`` as they are, signed with this session's key."""
        return [*idents, DELIMITER, self.sign(parts), *parts, *buffers]

    def parse(self, frames: list[bytes]) -> Message:
        """Verify and decode frames; raise a ``ProtocolError`` subclass if bad.

        The signature is checked before any JSON is decoded, so an
        unauthenticated peer never reaches the parser.
        """
        idents, parts, buffers = self.verify(frames)
        header = decode_object("header", parts[0])
        for key in ("msg_id", "msg_type"):
            if not isinstance(header.get(key), str):
                raise MalformedMessage(f"header.{key} missing or not a string")
        try:
            parent, metadata, content = [
                decode_object(name, raw)
                for name, raw in zip(("parent_header", "metadata", "content"), parts[1:], strict=True)
            ]
        except MalformedMessage as exc:  # signed, with a readable header: it can still be answered
            raise MalformedMessage(str(exc), Message(header, buffers=buffers, idents=idents)) from None
        return Message(header, parent, metadata, content, buffers, idents)

    def _remember(self, signature: int) -> None:
        self._seen.add(signature)
        self._seen_order.append(signature)
        if len(self._seen_order) > self._replay_window:
            self._seen.discard(self._seen_order.popleft())


class CurveSession(Session):
    """Messages of an ipyparallel cluster that runs on CurveZMQ: its
    controller leaves them unsigned (an empty key: CurveZMQ authenticates
    and encrypts every connection, and guards against replays), so they are
    sent unsigned and taken unsigned.  Only the engine's Curve sockets use
    it; zembed's own kernel always signs."""

    def __init__(self, *, username: str = "zembed") -> None:
        super().__init__(b"curve", username=username)  # a placeholder key: nothing is signed with it

    def sign(self, parts: list[bytes]) -> bytes:
        return b""

    def _authenticate(self, signature: bytes, parts: list[bytes]) -> None:
        if signature:
            raise BadSignature("a signed message on a cluster that signs none")


def cluster_session(info: Dict, username: str) -> Session:
    """For an ipyparallel cluster's messages (``info``: its engine file):
    signed with the controller's key, or none on a Curve cluster that has none."""
    if not info["key"]:
        return CurveSession(username=username)
    return Session(info["key"].encode("ascii"), username=username)
