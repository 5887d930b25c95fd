"""Debian's baresip calls the real server and hears the SWML greeting (checked by transcription)."""

from __future__ import annotations

import pytest

from tests.interop.conftest import BaresipFactory
from tests.support.baresip import require_baresip
from tests.support.server import ServerProcess
from tests.support.speech import contains_words, transcribe

require_baresip(at_import=True)
pytestmark = pytest.mark.interop

GREETING_WORDS = ["thank", "you", "for", "calling", "voice", "media", "server", "speaking"]


@pytest.mark.parametrize("codec", ["PCMU", "opus", "G722"])
def test_softphone_hears_the_greeting(server: ServerProcess, baresip_factory: BaresipFactory, codec: str) -> None:
    phone = baresip_factory("caller", codec=codec)
    phone.call(f"sip:greeting@127.0.0.1:{server.sip_port}")
    phone.wait_for("established", timeout=15)
    phone.wait_for("closed", timeout=30)  # the SWML document hangs up after the greeting
    negotiated = phone.negotiated_codec
    assert negotiated is not None and negotiated[0].lower() == codec.lower()
    assert phone.closed_reason == "Connection reset by peer"
    text = transcribe(phone.recording_path)
    assert contains_words(text, GREETING_WORDS, min_fraction=0.75), text
    server.wait_idle()


def test_softphone_hangs_up_first(server: ServerProcess, baresip_factory: BaresipFactory) -> None:
    phone = baresip_factory("caller", codec="PCMU")
    phone.call(f"sip:long@127.0.0.1:{server.sip_port}")
    phone.wait_for("established", timeout=15)
    assert phone.hangup_after(2.0) is True
    health = server.wait_idle()
    assert health["rtp_ports_in_use"] == 0
