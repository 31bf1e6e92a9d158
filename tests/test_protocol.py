"""The wire format, without sockets: signing, parsing, rejection."""

from __future__ import annotations

import json

import pytest
from jupyter_client.session import Session as JupyterSession

from zembed import BadSignature, MalformedMessage, ReplayedMessage
from zembed._protocol import DELIMITER, Session, new_key


@pytest.fixture
def pair():
    key = new_key()
    return Session(key), JupyterSession(key=key)


def test_key_is_256_bits():
    key = new_key()
    assert len(bytes.fromhex(key.decode())) == 32
    assert new_key() != key


def test_jupyter_client_reads_what_we_sign(pair):
    ours, theirs = pair
    frames = ours.serialize("execute_reply", {"status": "ok"}, {"msg_id": "p"}, idents=[b"client"])
    idents, rest = theirs.feed_identities(frames)
    msg = theirs.deserialize(rest)  # raises on a bad signature
    assert idents == [b"client"]
    assert msg["header"]["version"] == "5.5"
    assert msg["header"]["msg_type"] == "execute_reply"
    assert msg["parent_header"] == {"msg_id": "p"}
    assert msg["content"] == {"status": "ok"}


def test_we_read_what_jupyter_client_signs(pair):
    ours, theirs = pair
    msg = theirs.msg("execute_request", {"code": "1"})
    frames = [b"id"] + theirs.serialize(msg)
    parsed = ours.parse(frames)
    assert parsed.msg_type == "execute_request" and parsed.content == {"code": "1"}
    assert parsed.idents == [b"id"]


def test_bad_and_missing_signatures_are_rejected(pair):
    ours, theirs = pair
    frames = theirs.serialize(theirs.msg("execute_request", {"code": "1"}))
    tampered = list(frames)
    tampered[5] = json.dumps({"code": "import os"}).encode()
    with pytest.raises(BadSignature):
        ours.parse(tampered)
    unsigned = list(frames)
    unsigned[1] = b""
    with pytest.raises(BadSignature):
        ours.parse(unsigned)
    other_key = JupyterSession(key=new_key())
    with pytest.raises(BadSignature):
        ours.parse(other_key.serialize(other_key.msg("execute_request", {"code": "1"})))


def test_replays_are_rejected(pair):
    ours, theirs = pair
    frames = theirs.serialize(theirs.msg("execute_request", {"code": "1"}))
    ours.parse(frames)
    with pytest.raises(ReplayedMessage):
        ours.parse(frames)


def test_replay_memory_is_bounded():
    key = new_key()
    ours, theirs = Session(key, replay_window=3), JupyterSession(key=key)
    for _ in range(10):
        ours.parse(theirs.serialize(theirs.msg("kernel_info_request", {})))
    assert len(ours._seen) == 3


@pytest.mark.parametrize(
    "frames,reason",
    [
        ([b"a", b"b"], "delimiter"),
        ([DELIMITER, b"sig", b"{}"], "frames after the delimiter"),
    ],
)
def test_malformed_framing(frames, reason):
    with pytest.raises(MalformedMessage, match=reason):
        Session(new_key()).parse(frames)


def signed(session, parts):
    return [DELIMITER, session.sign(parts), *parts]


@pytest.mark.parametrize(
    "header,problem",
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"msg_type": 3, "msg_id": "x"}', "msg_type"),
        (b'{"msg_type": "x"}', "msg_id"),
    ],
)
def test_signed_but_malformed_json(header, problem):
    session = Session(new_key())
    with pytest.raises(MalformedMessage, match=problem):
        session.parse(signed(session, [header, b"{}", b"{}", b"{}"]))


def test_empty_key_is_refused():
    with pytest.raises(ValueError):
        Session(b"")


@pytest.mark.parametrize("use_orjson", [True, False], ids=["orjson", "stdlib-json"])
def test_round_trip_with_and_without_orjson(monkeypatch, pair, use_orjson):
    import zembed._protocol as protocol

    if not use_orjson:
        monkeypatch.setattr(protocol, "orjson", None)
    ours, theirs = pair
    content = {"text": "ünïcode \ud800 surrogate", "big": 2**70, "nested": {1: "int key"}}
    frames = ours.serialize("stream", content)
    msg = theirs.deserialize(theirs.feed_identities(frames)[1])
    assert msg["content"]["text"].startswith("ünïcode ")  # the lone surrogate is replaced, not fatal
    assert msg["content"]["big"] == 2**70 and msg["content"]["nested"] == {"1": "int key"}
    # and NaN from an old client parses
    raw = theirs.msg("execute_request", {"code": "1"})
    frames = theirs.serialize(raw)
    frames[5] = b'{"code": "1", "x": NaN}'
    frames[1] = ours.sign(frames[2:6])
    assert ours.parse(frames).content["code"] == "1"


def _signed(session: Session, parts: list[bytes]) -> list[bytes]:
    return [DELIMITER, session.sign(parts), *parts]


def test_nesting_too_deep_for_any_parser_is_a_malformed_message():
    """RecursionError from the stdlib fallback escaped parse() and ended the socket thread."""
    session = Session(new_key())
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(MalformedMessage, match="header nests too deeply") as caught:
        session.parse(_signed(session, [deep, b"{}", b"{}", b"{}"]))
    assert caught.value.request is None  # nothing to answer: the header itself is unreadable


def test_a_readable_header_makes_a_malformed_request_answerable():
    session = Session(new_key())
    header = json.dumps({"msg_id": "m1", "msg_type": "execute_request"}).encode()
    with pytest.raises(MalformedMessage, match="content is not JSON") as caught:
        session.parse(_signed(session, [header, b"{}", b"{}", b'{"code": ' + b"9" * 100_000 + b"}"]))
    request = caught.value.request
    assert request.msg_id == "m1" and request.content == {}  # the header, never the content


def test_serialize_safely_degrades_what_cannot_be_written_back():
    session = Session(new_key())
    circular: dict = {}
    circular["self"] = circular
    parent = {"msg_id": "p1", "session": "s", "username": "u", "deep": circular, "n": 2**80}
    frames, given_up = session.serialize_safely("kernel_info_reply", {"status": "ok"}, parent)
    assert given_up == "the parent header or metadata"
    reader = Session(session.key)
    message = reader.parse(frames)
    assert message.parent_header == {"msg_id": "p1", "session": "s", "username": "u"}
    assert message.content == {"status": "ok"}
    frames, given_up = session.serialize_safely("execute_reply", {"status": "ok", "x": circular}, parent)
    assert given_up == "the content"
    content = reader.parse(frames).content
    assert content["status"] == "error" and content["ename"] == "UnserializableContent"
    frames, given_up = session.serialize_safely("status", {"execution_state": "idle"}, {"msg_id": "p2"})
    assert given_up is None
