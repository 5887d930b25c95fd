"""STUN on the WebRTC side: every datagram on a browser call's ICE socket goes first through
aioice's `stun.parse_message` (aioice.ice's `datagram_received`), which must return a message or
raise `ValueError` (a non-STUN datagram then goes to DTLS/SRTP). Any other exception escapes into
the event loop, a log line per datagram: aioice raised `struct.error` for a truncated attribute,
which mediaserver/transport/stun_guard.py turns into the ValueError its callers expect.
Seeds are real ICE binding requests (USERNAME, PRIORITY, ICE-CONTROLLED, USE-CANDIDATE,
MESSAGE-INTEGRITY, FINGERPRINT), responses and errors; the integrity check a request then
gets is fuzzed too."""

from __future__ import annotations

import os
import struct

import pytest
from aioice import stun
from hypothesis import given
from hypothesis import strategies as st

import mediaserver.transport.webrtc  # noqa: F401  (installs the guard, as the server does)
from tests.fuzz.support import budget, mutated_bytes

KEY = b"0123456789abcdefghijklmn"


def _seeds() -> list[bytes]:
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST, transaction_id=os.urandom(12))
    request.attributes["USERNAME"] = "remote:local"
    request.attributes["PRIORITY"] = 1853824767
    request.attributes["ICE-CONTROLLED"] = 0x1234567890ABCDEF
    request.attributes["USE-CANDIDATE"] = None
    request.add_message_integrity(KEY)
    request.add_fingerprint()
    response = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE, transaction_id=os.urandom(12))
    response.attributes["XOR-MAPPED-ADDRESS"] = ("192.0.2.7", 40000)
    response.add_message_integrity(KEY)
    response.add_fingerprint()
    error = stun.Message(stun.Method.BINDING, stun.Class.ERROR, transaction_id=os.urandom(12))
    error.attributes["ERROR-CODE"] = (487, "Role Conflict")
    v6 = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE, transaction_id=os.urandom(12))
    v6.attributes["XOR-MAPPED-ADDRESS"] = ("2001:db8::7", 40000)
    return [bytes(m) for m in (request, response, error, v6)]


SEEDS = _seeds()


def test_the_seeds_parse() -> None:
    assert [stun.parse_message(s).message_class for s in SEEDS] == [
        stun.Class.REQUEST,
        stun.Class.RESPONSE,
        stun.Class.ERROR,
        stun.Class.RESPONSE,
    ]


def test_a_truncated_attribute_is_a_value_error() -> None:
    # A PRIORITY attribute of 2 bytes: aioice's own parser raised struct.error here.
    body = struct.pack("!HH", 0x0024, 2) + b"ab\x00\x00"
    data = struct.pack("!HHI12s", 0x0001, len(body), 0x2112A442, b"x" * 12) + body
    with pytest.raises(ValueError, match="too short"):
        stun.parse_message(data)


@budget(600)
@given(st.one_of(mutated_bytes(SEEDS, lines=False), st.binary(max_size=300)))
def test_parse_message_returns_or_raises_value_error(data: bytes) -> None:
    try:
        message = stun.parse_message(data)
    except ValueError:
        return
    # What the ICE connection does with a request next (the FINGERPRINT was checked by the parse):
    # the integrity check must answer True or False, whatever the attributes hold.
    assert isinstance(message.check_message_integrity(KEY), bool)
    str(message)  # logged at debug level
