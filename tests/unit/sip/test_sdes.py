"""SDES (RFC 4568) a=crypto parsing and the secure offer/answer of mssip.sdes."""

from __future__ import annotations

import base64

import pytest

from mssip.errors import NegotiationError, SdpParseError
from mssip.sdes import (
    KEY_LENGTH,
    SUITES,
    Crypto,
    answer_offer,
    make_offer_with_keys,
    parse_crypto,
    read_answer_keys,
    usable_crypto,
)
from mssip.sdp import CodecSpec, SessionDescription, parse_sdp

PCMU = CodecSpec("PCMU", 8000)
PCMA = CodecSpec("PCMA", 8000)
KEY = bytes(range(KEY_LENGTH))
KEY_B64 = base64.b64encode(KEY).decode()
OTHER_B64 = base64.b64encode(bytes(range(100, 100 + KEY_LENGTH))).decode()


def offer(proto: str = "RTP/SAVP", cryptos: tuple[str, ...] = (), extra_m: str = "") -> SessionDescription:
    lines = [
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.5",
        "s=-",
        "c=IN IP4 192.0.2.5",
        "t=0 0",
        *([extra_m] if extra_m else []),
        f"m=audio 4000 {proto} 0 101",
        *(f"a=crypto:{c}" for c in cryptos),
        "a=rtpmap:101 telephone-event/8000",
        "a=sendrecv",
    ]
    return parse_sdp("\r\n".join(lines) + "\r\n")


@pytest.mark.parametrize("suite", SUITES)
def test_parse_both_suites_and_write_back(suite: str) -> None:
    crypto = parse_crypto(f"1 {suite} inline:{KEY_B64}")
    assert crypto == Crypto(1, suite, KEY)
    assert str(crypto) == f"1 {suite} inline:{KEY_B64}"
    with_lifetime = parse_crypto(f"7 {suite} inline:{KEY_B64}|2^31")
    assert with_lifetime.tag == 7 and with_lifetime.lifetime == "2^31"
    assert str(with_lifetime).endswith("|2^31")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1 AES_CM_128_HMAC_SHA1_80",  # no key
        f"x AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}",  # tag not a number
        f"1234567890 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}",  # tag over 9 digits
        f"1 F8_128_HMAC_SHA1_80 inline:{KEY_B64}",  # a suite we do not run
        f"1 AEAD_AES_256_GCM inline:{KEY_B64}",
        f"1 AES_CM_128_HMAC_SHA1_80 uri:{KEY_B64}",  # not inline
        "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64!",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(KEY[:16]).decode()}",  # 16 bytes, no salt
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^31|1:4",  # MKI
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^99",  # lifetime beyond 2^48
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64};inline:{OTHER_B64}",  # several keys
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64} UNENCRYPTED_SRTP",  # session parameter
    ],
)
def test_bad_or_unsupported_lines_are_refused(value: str) -> None:
    with pytest.raises(SdpParseError):
        parse_crypto(value)


def test_usable_crypto_skips_what_it_cannot_run_in_offer_order() -> None:
    media = offer(
        cryptos=(
            f"1 AES_256_CM_HMAC_SHA1_80 inline:{KEY_B64}",
            "2 AES_CM_128_HMAC_SHA1_80 inline:short",
            f"3 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}",
            f"4 AES_CM_128_HMAC_SHA1_80 inline:{OTHER_B64}",
        )
    ).media[0]
    found = usable_crypto(media)
    assert found is not None and (found.tag, found.suite) == (3, "AES_CM_128_HMAC_SHA1_32")
    assert usable_crypto(media, ("AES_CM_128_HMAC_SHA1_80",)) == Crypto(
        4, "AES_CM_128_HMAC_SHA1_80", base64.b64decode(OTHER_B64)
    )


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("mode", ["optional", "required"])
def test_savp_offer_is_answered_savp_with_our_own_key(suite: str, mode: str) -> None:
    sdp = offer(cryptos=(f"5 {suite} inline:{KEY_B64}",))
    answer, keys = answer_offer(sdp, [PCMU], "198.51.100.1", 30000, 1, mode=mode)
    assert keys is not None and keys.suite == suite and keys.remote_key == KEY
    assert len(keys.local_key) == KEY_LENGTH and keys.local_key != KEY
    written = parse_sdp(answer.answer.serialize())
    media = written.media[0]
    assert media.proto == "RTP/SAVP" and media.port == 30000
    assert media.attribute_values("crypto") == [f"5 {suite} inline:{base64.b64encode(keys.local_key).decode()}"]
    # Each call gets a fresh key.
    _, again = answer_offer(sdp, [PCMU], "198.51.100.1", 30000, 1, mode=mode)
    assert again is not None and again.local_key != keys.local_key


def test_off_refuses_savp_and_answers_best_effort_crypto_in_plain() -> None:
    with pytest.raises(NegotiationError):
        answer_offer(offer(cryptos=(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}",)), [PCMU], "h", 1, 1, mode="off")
    answer, keys = answer_offer(
        offer("RTP/AVP", (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}",)), [PCMU], "h", 1, 1, mode="off"
    )
    assert keys is None and answer.answer.media[0].attribute("crypto") is None


def test_required_refuses_plain_and_unusable_keys() -> None:
    with pytest.raises(NegotiationError, match="SRTP"):
        answer_offer(offer("RTP/AVP"), [PCMU], "h", 1, 1, mode="required")
    with pytest.raises(NegotiationError):  # SAVP whose only key is malformed
        answer_offer(offer(cryptos=("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA",)), [PCMU], "h", 1, 1, mode="required")
    with pytest.raises(NegotiationError):  # SAVP with no a=crypto at all
        answer_offer(offer(), [PCMU], "h", 1, 1, mode="required")


def test_required_accepts_best_effort_avp_with_keys() -> None:
    answer, keys = answer_offer(
        offer("RTP/AVP", (f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}",)), [PCMU], "h", 1, 1, mode="required"
    )
    assert keys is not None and keys.suite == "AES_CM_128_HMAC_SHA1_32"
    assert answer.answer.media[0].proto == "RTP/AVP" and answer.answer.media[0].attribute("crypto")


def test_optional_falls_back_to_plain_and_prefers_the_keyed_of_two_m_lines() -> None:
    answer, keys = answer_offer(offer("RTP/AVP"), [PCMU], "h", 1, 1, mode="optional")
    assert keys is None and answer.answer.media[0].proto == "RTP/AVP"
    # Two m-lines, plain first and SAVP second: the keyed one is answered, the other refused (port 0).
    two = offer(cryptos=(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}",), extra_m="m=audio 4002 RTP/AVP 0")
    answer, keys = answer_offer(two, [PCMU], "h", 7000, 1, mode="optional")
    assert keys is not None and answer.media_index == 1
    assert [(m.proto, m.port) for m in answer.answer.media] == [("RTP/AVP", 0), ("RTP/SAVP", 7000)]
    assert answer.remote_port == 4000


def test_re_offer_keeps_our_key() -> None:
    sdp = offer(cryptos=(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}",))
    _, keys = answer_offer(sdp, [PCMU], "h", 1, 1, mode="required", local_key=KEY[::-1])
    assert keys is not None and keys.local_key == KEY[::-1]


def test_unknown_mode_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="mode"):
        answer_offer(offer(), [PCMU], "h", 1, 1, mode="maybe")


@pytest.mark.parametrize(("mode", "proto"), [("required", "RTP/SAVP"), ("optional", "RTP/AVP")])
def test_offer_then_answer_round_trip(mode: str, proto: str) -> None:
    """Our offer, answered by our own answerer: both sides end with mirrored keys."""
    ours, cryptos = make_offer_with_keys([PCMU, PCMA], "192.0.2.1", 20000, 9, mode=mode)
    media = parse_sdp(ours.serialize()).media[0]
    assert media.proto == proto
    assert [parse_crypto(v).suite for v in media.attribute_values("crypto")] == list(SUITES)
    assert len({c.key for c in cryptos}) == 2
    answered, answer_keys = answer_offer(parse_sdp(ours.serialize()), [PCMU], "192.0.2.2", 30000, 3, mode="required")
    assert answer_keys is not None
    read, keys = read_answer_keys(parse_sdp(answered.answer.serialize()), [PCMU, PCMA], cryptos, mode=mode)
    assert keys is not None and read.remote_port == 30000
    assert keys.suite == SUITES[0] and keys.local_key == cryptos[0].key
    assert (keys.local_key, keys.remote_key) == (answer_keys.remote_key, answer_keys.local_key)


def test_off_offers_no_keys() -> None:
    ours, cryptos = make_offer_with_keys([PCMU], "192.0.2.1", 20000, 9, mode="off")
    assert cryptos == () and ours.media[0].proto == "RTP/AVP" and ours.media[0].attribute("crypto") is None


def test_answers_we_cannot_use() -> None:
    _, cryptos = make_offer_with_keys([PCMU], "192.0.2.1", 20000, 9, mode="required")
    plain = offer("RTP/AVP")
    with pytest.raises(NegotiationError, match="required"):
        read_answer_keys(plain, [PCMU], cryptos, mode="required")
    media, keys = read_answer_keys(plain, [PCMU], cryptos, mode="optional")  # best effort declined
    assert keys is None and media.remote_port == 4000
    wrong_tag = offer(cryptos=(f"9 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}",))
    with pytest.raises(NegotiationError, match="a=crypto"):
        read_answer_keys(wrong_tag, [PCMU], cryptos, mode="optional")
    wrong_suite = offer(cryptos=(f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}",))  # tag 1 is our _80
    with pytest.raises(NegotiationError):
        read_answer_keys(wrong_suite, [PCMU], cryptos, mode="optional")
