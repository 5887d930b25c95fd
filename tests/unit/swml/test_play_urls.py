"""The play URL mini-language: say:, silence:, ring:, files; errors name the path."""

from __future__ import annotations

import pytest

from mediaserver.swml.errors import SwmlError
from mediaserver.swml.play_urls import PlayFile, PlayRing, PlaySay, PlaySilence, parse_play_url

P = "sections.main[0].play.url"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("say:Hello there", PlaySay("Hello there")),
        ("say:Time: 10:30, ok", PlaySay("Time: 10:30, ok")),  # colons after the first are text
        ("SAY:shout", PlaySay("shout")),
        ("silence:2", PlaySilence(2000)),
        ("silence:1.5", PlaySilence(1500)),
        ("silence: 0.25", PlaySilence(250)),  # the schema writes "silence: <duration>"
        ("silence:0", PlaySilence(0)),
        ("ring:us", PlayRing(None, "us")),
        ("ring:10:us", PlayRing(10_000, "us")),
        ("ring:20.0:UK", PlayRing(20_000, "uk")),
        ("https://example.com/a.mp3", PlayFile("https://example.com/a.mp3")),
        ("http://example.com/a.wav?x=1", PlayFile("http://example.com/a.wav?x=1")),
        ("file:///var/sounds/a.wav", PlayFile("file:///var/sounds/a.wav")),
        ("/var/sounds/a.wav", PlayFile("/var/sounds/a.wav")),
        ("sounds/beep.wav", PlayFile("sounds/beep.wav")),
    ],
)
def test_parse(url: str, expected: object) -> None:
    assert parse_play_url(url, P) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty play URL"),
        ("   ", "empty play URL"),
        ("say:", "say: needs text to speak"),
        ("say:   ", "say: needs text to speak"),
        ("silence:", "silence:<seconds>: '' is not a number of seconds"),
        ("silence:-1", "silence:<seconds>: seconds must be >= 0, got '-1'"),
        ("silence:nan", "silence:<seconds>: seconds must be >= 0, got 'nan'"),
        ("ring:", "ring needs a two-letter country code, got ''"),
        ("ring:x:us", "ring:[<seconds>:]<country>: 'x' is not a number of seconds"),
        ("ring:1:2:us", "expected ring:[<seconds>:]<country>, got 'ring:1:2:us'"),
        ("ring:10", "ring needs a two-letter country code, got '10'"),
        ("https:///nohost.wav", "https URL has no host: 'https:///nohost.wav'"),
        ("rtmp://x/y", "unsupported play URL scheme 'rtmp' (say, silence, ring, http, https, file)"),
    ],
)
def test_errors_name_the_path(url: str, message: str) -> None:
    with pytest.raises(SwmlError) as caught:
        parse_play_url(url, P)
    assert str(caught.value) == f"{P}: {message}"


def test_non_string() -> None:
    with pytest.raises(SwmlError, match=r"^x\.urls\[1\]: expected a string$"):
        parse_play_url(3, "x.urls[1]")  # type: ignore[arg-type]


def test_file_paths() -> None:
    assert PlayFile("file:///var/my%20sounds/a.wav").local_path == "/var/my sounds/a.wav"
    assert PlayFile("sounds/a.wav").local_path == "sounds/a.wav"
    assert PlayFile("https://example.com/a.wav").local_path is None
    assert PlayFile("HTTPS://example.com/a.wav").is_remote
