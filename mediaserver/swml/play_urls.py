"""The URL mini-language of `play` (and later `prompt.play`): one string, one thing to hear.

Theory of operation: SWML packs four kinds of media into one string field, told apart by a
scheme-like prefix (docs/swml-contract.md §1, schema `play_url`):

    say:<text>              text to speak with the call's TTS voice   -> PlaySay
    silence:<seconds>       seconds of silence, fractions allowed      -> PlaySilence
    ring:[<seconds>:]<cc>   a country's ringback tone; without seconds -> PlayRing
                            one ring cadence (duration_ms is None)
    http(s)://..., file:///..., or a bare local path                   -> PlayFile

`parse_play_url(url, path)` turns the string into a frozen value and raises `SwmlError` naming
the JSON path for anything else, so a typo fails when the document loads, not mid-call.
Durations leave this module in integer milliseconds (seconds exist only in the URL text).
Pure: no I/O, nothing is fetched or opened here; `PlayFile.local_path` only reads the string.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from mediaserver.swml.errors import SwmlError

# A scheme is what RFC 3986 allows before the first colon; anything without one is a path.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
# Ring tones are keyed by ISO 3166 alpha-2 codes (us, uk, de...), as in FreeSWITCH's tone tables.
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_FILE_SCHEMES = frozenset({"http", "https", "file"})


@dataclass(frozen=True, slots=True)
class PlaySay:
    text: str
    voice: str | None = None
    language: str | None = None
    gender: str | None = None


@dataclass(frozen=True, slots=True)
class PlaySilence:
    duration_ms: int


@dataclass(frozen=True, slots=True)
class PlayRing:
    duration_ms: int | None  # None: a single ring cadence, as `ring:us` means
    country: str  # lower-case ISO 3166 alpha-2


@dataclass(frozen=True, slots=True)
class PlayFile:
    url: str  # as written: http(s)://, file:// or a bare path

    @property
    def is_remote(self) -> bool:
        return self.url.lower().startswith(("http://", "https://"))

    @property
    def local_path(self) -> str | None:
        """The filesystem path for `file://` URLs and bare paths; None for http(s)."""
        if self.is_remote:
            return None
        if self.url.lower().startswith("file:"):
            return unquote(urlsplit(self.url).path)
        return self.url


PlayItem = PlaySay | PlaySilence | PlayRing | PlayFile


def parse_play_url(url: str, path: str) -> PlayItem:
    """Parse one play URL; `path` is its JSON path, used in every error."""
    if not isinstance(url, str):
        raise SwmlError(path, "expected a string")
    if not url.strip():
        raise SwmlError(path, "empty play URL")
    match = _SCHEME.match(url)
    if match is None:
        return PlayFile(url)
    scheme = match.group(1).lower()
    rest = url[match.end() :]
    if scheme == "say":
        if not rest.strip():
            raise SwmlError(path, "say: needs text to speak")
        return PlaySay(rest)
    if scheme == "silence":
        return PlaySilence(_seconds_to_ms(rest, path, "silence:<seconds>"))
    if scheme == "ring":
        return _parse_ring(rest, path)
    if scheme in _FILE_SCHEMES:
        if scheme != "file" and not urlsplit(url).netloc:
            raise SwmlError(path, f"{scheme} URL has no host: {url!r}")
        return PlayFile(url)
    raise SwmlError(path, f"unsupported play URL scheme {scheme!r} (say, silence, ring, http, https, file)")


def _parse_ring(rest: str, path: str) -> PlayRing:
    parts = rest.split(":")
    if len(parts) == 1:
        duration_ms: int | None = None
        country = parts[0].strip()
    elif len(parts) == 2:
        duration_ms = _seconds_to_ms(parts[0], path, "ring:[<seconds>:]<country>")
        country = parts[1].strip()
    else:
        raise SwmlError(path, f"expected ring:[<seconds>:]<country>, got 'ring:{rest}'")
    if not _COUNTRY.match(country):
        raise SwmlError(path, f"ring needs a two-letter country code, got {country!r}")
    return PlayRing(duration_ms, country.lower())


def _seconds_to_ms(text: str, path: str, form: str) -> int:
    # The schema writes "silence: <duration>" with a space, so surrounding blanks are allowed.
    try:
        seconds = float(text.strip())
    except ValueError:
        raise SwmlError(path, f"{form}: {text.strip()!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise SwmlError(path, f"{form}: seconds must be >= 0, got {text.strip()!r}")
    return round(seconds * 1000)
