"""SDP (RFC 4566) parse/serialise and the audio offer/answer of RFC 3264.

Theory of operation: ``SessionDescription.parse`` reads the ``x=value`` lines into a session
part and one ``MediaDescription`` per ``m=`` line. Lines this model has no field for (``i=``,
``b=``, ``k=``, ``u=``...) are kept in ``extra`` and written back in RFC 4566 order, and ``a=``
lines are kept in order as ``(name, value)`` pairs, so unknown attributes survive a round trip.
``negotiate`` answers an offer for one audio stream: the first audio format of the offer, in the
offer's preference order, that we support; telephone-event when offered; direction mirrored;
ptime kept. Other m-lines are refused with port 0, as RFC 3264 §6 wants (the answer has as many
m-lines as the offer). Payload types stay strings in the model (SDP ``fmt`` is text) and become
ints in ``NegotiatedMedia``. Malformed SDP raises ``SdpParseError``; nothing to answer raises
``NegotiationError`` (both mean 488 to the glue).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mssip.errors import NegotiationError, SdpParseError

__all__ = [
    "DIRECTIONS",
    "STATIC_PAYLOAD_TYPES",
    "SUPPORTED_PROTOS",
    "CodecSpec",
    "Connection",
    "MediaDescription",
    "NegotiatedMedia",
    "NegotiationError",
    "Origin",
    "RtpMap",
    "SdpParseError",
    "SessionDescription",
    "make_offer",
    "negotiate",
    "parse_sdp",
    "read_answer",
]

Attribute = tuple[str, str | None]
_SESSION_ORDER = "vosiuepcbtrzkam"
_MEDIA_ORDER = "micbka"
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_MIRROR = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
SUPPORTED_PROTOS = ("RTP/AVP", "RTP/AVPF")  # plain RTP; SDES-SRTP (RTP/SAVP) is mssip.sdes


@dataclass(frozen=True, slots=True)
class RtpMap:
    encoding: str
    clock_rate: int
    channels: int = 1

    def __str__(self) -> str:
        return f"{self.encoding}/{self.clock_rate}" + (f"/{self.channels}" if self.channels != 1 else "")


# RFC 3551 static audio payload types: valid without an rtpmap line.
STATIC_PAYLOAD_TYPES = {
    0: RtpMap("PCMU", 8000),
    3: RtpMap("GSM", 8000),
    4: RtpMap("G723", 8000),
    5: RtpMap("DVI4", 8000),
    6: RtpMap("DVI4", 16000),
    7: RtpMap("LPC", 8000),
    8: RtpMap("PCMA", 8000),
    9: RtpMap("G722", 8000),
    10: RtpMap("L16", 44100, 2),
    11: RtpMap("L16", 44100),
    12: RtpMap("QCELP", 8000),
    13: RtpMap("CN", 8000),
    15: RtpMap("G728", 8000),
    16: RtpMap("DVI4", 11025),
    17: RtpMap("DVI4", 22050),
    18: RtpMap("G729", 8000),
}


@dataclass(slots=True)
class Origin:
    username: str = "-"
    session_id: str = "0"
    session_version: str = "0"
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def __str__(self) -> str:
        return " ".join(
            [self.username, self.session_id, self.session_version, self.nettype, self.addrtype, self.address]
        )


@dataclass(slots=True)
class Connection:
    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    @property
    def host(self) -> str:
        return self.address.split("/")[0]  # drop a multicast /ttl suffix

    @classmethod
    def for_address(cls, address: str) -> Connection:
        return cls(address, "IN", "IP6" if ":" in address else "IP4")

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


def _parse_connection(value: str) -> Connection:
    parts = value.split()
    if len(parts) != 3:
        raise SdpParseError("bad c= line")
    return Connection(parts[2], parts[0], parts[1])


class _Attributes:
    """Attribute helpers shared by the session and media levels."""

    attributes: list[Attribute]

    def attribute(self, name: str) -> str | None:
        """Value of the first ``a=name:value`` ("" for a flag such as ``a=rtcp-mux``), or None."""
        for key, value in self.attributes:
            if key == name:
                return "" if value is None else value
        return None

    def attribute_values(self, name: str) -> list[str]:
        return ["" if value is None else value for key, value in self.attributes if key == name]

    @property
    def direction(self) -> str | None:
        return next((key for key, _ in self.attributes if key in DIRECTIONS), None)

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        try:
            return int(float(value)) if value else None
        except (ValueError, OverflowError):  # 'abc', 'inf'
            return None


@dataclass(slots=True)
class MediaDescription(_Attributes):
    media: str
    port: int
    proto: str
    formats: list[str]
    attributes: list[Attribute] = field(default_factory=list)
    connection: Connection | None = None
    port_count: int | None = None
    extra: list[tuple[str, str]] = field(default_factory=list)

    def rtpmap(self, payload_type: str) -> RtpMap | None:
        """The format's rtpmap line, else its RFC 3551 static meaning, else None."""
        for value in self.attribute_values("rtpmap"):
            pt, _, spec = value.partition(" ")
            if pt == payload_type:
                parts = spec.strip().split("/")
                try:
                    channels = int(parts[2]) if len(parts) > 2 and parts[2] else 1
                    return RtpMap(parts[0], int(parts[1]), channels)
                except (IndexError, ValueError):
                    return None
        if _is_number(payload_type):
            return STATIC_PAYLOAD_TYPES.get(int(payload_type))
        return None

    def fmtp(self, payload_type: str) -> str | None:
        for value in self.attribute_values("fmtp"):
            pt, _, params = value.partition(" ")
            if pt == payload_type:
                return params.strip()
        return None

    def _lines(self) -> list[tuple[str, str]]:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        lines = [("m", " ".join([self.media, port, self.proto, *self.formats]))]
        if self.connection is not None:
            lines.append(("c", str(self.connection)))
        lines += self.extra
        lines += [("a", name if value is None else f"{name}:{value}") for name, value in self.attributes]
        # Unknown line types (kept from the offer) go just before the attributes, as RFC 4566 orders them.
        return sorted(lines, key=lambda line: _MEDIA_ORDER.find(line[0]) if line[0] in _MEDIA_ORDER else 4.5)


@dataclass(slots=True)
class SessionDescription(_Attributes):
    origin: Origin = field(default_factory=Origin)
    session_name: str = "-"
    connection: Connection | None = None
    timing: list[tuple[str, str]] = field(default_factory=lambda: [("t", "0 0")])
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)
    version: int = 0

    def connection_of(self, media: MediaDescription) -> Connection | None:
        return media.connection or self.connection

    def direction_of(self, media: MediaDescription) -> str:
        return media.direction or self.direction or "sendrecv"

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        return parse_sdp(data)

    def serialize(self) -> bytes:
        lines = [("v", str(self.version)), ("o", str(self.origin)), ("s", self.session_name)]
        if self.connection is not None:
            lines.append(("c", str(self.connection)))
        lines += self.extra
        lines += [("a", name if value is None else f"{name}:{value}") for name, value in self.attributes]
        lines.sort(key=lambda line: _SESSION_ORDER.index(line[0]))
        # Timing lines keep their own order (t, r, z belong together) and sit where t= goes.
        at = next((i for i, (kind, _) in enumerate(lines) if _SESSION_ORDER.index(kind) > 9), len(lines))
        lines[at:at] = self.timing
        for media in self.media:
            lines += media._lines()
        return "".join(f"{kind}={value}\r\n" for kind, value in lines).encode("utf-8")


def parse_sdp(data: bytes | str) -> SessionDescription:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise SdpParseError("SDP is not valid UTF-8") from None
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or not lines[0].startswith("v="):
        raise SdpParseError("SDP does not start with v=")
    session = SessionDescription(timing=[])
    current: MediaDescription | None = None
    for line in lines:
        kind, eq, value = line.partition("=")
        if not eq or len(kind) != 1 or not kind.isalpha():
            raise SdpParseError("bad SDP line")
        if kind == "m":
            current = _parse_media(value)
            session.media.append(current)
        elif kind == "a":
            name, colon, attr_value = value.partition(":")
            (current or session).attributes.append((name, attr_value if colon else None))
        elif kind == "c":
            (current or session).connection = _parse_connection(value)
        elif current is not None:
            current.extra.append((kind, value))
        elif kind == "v":
            if value.strip() != "0":
                raise SdpParseError("unsupported SDP version")
        elif kind == "o":
            parts = value.split()
            if len(parts) != 6:
                raise SdpParseError("bad o= line")
            session.origin = Origin(*parts)
        elif kind == "s":
            session.session_name = value
        elif kind in "trz":
            session.timing.append((kind, value))
        elif kind in _SESSION_ORDER:
            session.extra.append((kind, value))
        # Unknown session-level types are ignored, as RFC 4566 §5 tells parsers to do.
    return session


def _is_number(text: str) -> bool:
    """Digits int() takes and a port or payload type fits: str.isdigit() alone is also true of
    '²', and int() refuses more than 4300 digits (both raised ValueError, not SdpParseError)."""
    return text.isascii() and text.isdigit() and len(text.lstrip("0")) <= 9


def _parse_media(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpParseError("bad m= line")
    port_text, slash, count_text = parts[1].partition("/")
    if not _is_number(port_text) or int(port_text) > 65535 or (slash and not _is_number(count_text)):
        raise SdpParseError("bad m= port")
    count = int(count_text) if slash else None
    return MediaDescription(parts[0], int(port_text), parts[2], parts[3:], port_count=count)


@dataclass(frozen=True, slots=True)
class CodecSpec:
    """A codec we can run, as SDP names it: ``CodecSpec("opus", 48000, 2)``, ``CodecSpec("G722", 8000)``.

    ``fmtp`` is what we put in our answer for it (what we want to receive), if anything.
    ``payload_type`` is the static RTP payload type our offers use for it (None: the RFC 3551
    static type if it has one, else a dynamic one). This package knows no codec of its own: the
    caller passes the list, derived from its codec table (the server's is ``mscodecs.SUPPORTED``).
    """

    name: str
    clock_rate: int
    channels: int = 1
    fmtp: str | None = None
    payload_type: int | None = None

    def matches(self, rtpmap: RtpMap) -> bool:
        return (
            self.name.lower() == rtpmap.encoding.lower()
            and self.clock_rate == rtpmap.clock_rate
            and self.channels == rtpmap.channels
        )


@dataclass(frozen=True, slots=True)
class NegotiatedMedia:
    answer: SessionDescription
    payload_type: int
    codec: CodecSpec
    dtmf_payload_type: int | None
    remote_ip: str
    remote_port: int
    ptime_ms: int
    direction: str  # ours, as written in the answer
    remote_fmtp: str | None = None  # the offer's fmtp for the chosen codec (opus encoder settings)
    media_index: int = 0  # the offer's m-line that was answered


DEFAULT_PTIME_MS = 20
DTMF_EVENTS = "0-16"


def negotiate(
    offer: SessionDescription,
    supported: list[CodecSpec],
    local_ip: str,
    local_port: int,
    session_id: int,
    *,
    protos: tuple[str, ...] = SUPPORTED_PROTOS,
    usable: Callable[[MediaDescription], bool] | None = None,
) -> NegotiatedMedia:
    """Answer ``offer`` for one audio stream; raise ``NegotiationError`` when nothing fits.

    Only audio m-lines whose transport is in ``protos`` (and, given ``usable``, that it accepts:
    the SDES keys of ``mssip.sdes``) are answerable."""
    audio_index, chosen_pt, codec = _choose_codec(offer, supported, protos, usable)
    offered = offer.media[audio_index]
    connection = offer.connection_of(offered)
    if connection is None:
        raise NegotiationError("offer has no connection address for audio")
    rtpmap = offered.rtpmap(chosen_pt)
    assert rtpmap is not None  # _choose_codec only returns formats it could resolve
    dtmf_pt = _choose_telephone_event(offered, rtpmap.clock_rate)
    ptime = offered.ptime or offer.ptime or DEFAULT_PTIME_MS
    offered_direction = offer.direction_of(offered)
    if connection.host in ("0.0.0.0", "::") and offered_direction == "sendrecv":
        offered_direction = "sendonly"  # RFC 2543 hold (RFC 3264 §8.4): "do not send to me"
    direction = _MIRROR[offered_direction]

    attributes: list[Attribute] = [("rtpmap", f"{chosen_pt} {rtpmap}")]
    if codec.fmtp:
        attributes.append(("fmtp", f"{chosen_pt} {codec.fmtp}"))
    formats = [chosen_pt]
    if dtmf_pt is not None:
        te_map = offered.rtpmap(dtmf_pt)
        assert te_map is not None
        formats.append(dtmf_pt)
        attributes += [("rtpmap", f"{dtmf_pt} {te_map}"), ("fmtp", f"{dtmf_pt} {DTMF_EVENTS}")]
    attributes += [("ptime", str(ptime)), (direction, None)]
    answer_media = []
    for index, media in enumerate(offer.media):
        if index == audio_index:
            answer_media.append(MediaDescription("audio", local_port, offered.proto, formats, attributes))
        else:
            # RFC 3264 §6: a refused stream keeps its place, with port 0 and one offered format.
            refused_formats = list(media.formats[:1] or ["0"])
            answer_media.append(MediaDescription(media.media, 0, media.proto, refused_formats))
    local = Connection.for_address(local_ip)
    answer = SessionDescription(
        origin=Origin("mediaserver", str(session_id), str(session_id), "IN", local.addrtype, local_ip),
        session_name="-",
        connection=local,
        media=answer_media,
    )
    return NegotiatedMedia(
        answer=answer,
        payload_type=int(chosen_pt),
        codec=codec,
        dtmf_payload_type=int(dtmf_pt) if dtmf_pt is not None else None,
        remote_ip=connection.host,
        remote_port=offered.port,
        ptime_ms=ptime,
        direction=direction,
        remote_fmtp=offered.fmtp(chosen_pt),
        media_index=audio_index,
    )


def _choose_codec(
    offer: SessionDescription,
    supported: list[CodecSpec],
    protos: tuple[str, ...] = SUPPORTED_PROTOS,
    accept: Callable[[MediaDescription], bool] | None = None,
) -> tuple[int, str, CodecSpec]:
    audio = [(i, m) for i, m in enumerate(offer.media) if m.media == "audio" and m.port != 0]
    if not audio:
        raise NegotiationError("no audio m-line in offer")
    usable = [(i, m) for i, m in audio if m.proto.upper() in protos and (accept is None or accept(m))]
    if not usable:
        raise NegotiationError(f"no audio m-line with a supported transport ({', '.join(protos)})")
    for index, media in usable:
        for pt in media.formats:
            rtpmap = media.rtpmap(pt)
            if rtpmap is None or not _is_number(pt) or rtpmap.encoding.lower() == "telephone-event":
                continue
            for codec in supported:
                if codec.matches(rtpmap):
                    return index, pt, codec
    raise NegotiationError("no acceptable audio codec in offer")


def _choose_telephone_event(media: MediaDescription, clock_rate: int) -> str | None:
    events = []
    for pt in media.formats:
        rtpmap = media.rtpmap(pt)
        if _is_number(pt) and rtpmap is not None and rtpmap.encoding.lower() == "telephone-event":
            events.append((pt, rtpmap))
    if not events:
        return None
    # RFC 4733 §2.3.1: events use the clock of the audio codec they accompany, when offered.
    same_clock = [pt for pt, rtpmap in events if rtpmap.clock_rate == clock_rate]
    return same_clock[0] if same_clock else events[0][0]


def _static_payload_type(codec: CodecSpec) -> str | None:
    if codec.payload_type is not None:
        return str(codec.payload_type)
    return next((str(pt) for pt, known in STATIC_PAYLOAD_TYPES.items() if codec.matches(known)), None)


def make_offer(codecs: list[CodecSpec], local_ip: str, local_port: int, session_id: int) -> SessionDescription:
    """An offer of one audio stream with ``codecs`` in preference order, plus telephone-event.

    Each codec's static payload type (``CodecSpec.payload_type``, else RFC 3551's), dynamic ones
    from 96 otherwise; telephone-event is offered at 8000 Hz (and at 48000 Hz too when a 48 kHz
    codec such as opus is offered, as browsers expect)."""
    formats: list[str] = []
    attributes: list[Attribute] = []
    dynamic = 96
    for codec in codecs:
        pt = _static_payload_type(codec)
        if pt is None:
            pt, dynamic = str(dynamic), dynamic + 1
        formats.append(pt)
        channels = f"/{codec.channels}" if codec.channels != 1 else ""
        attributes.append(("rtpmap", f"{pt} {codec.name}/{codec.clock_rate}{channels}"))
        if codec.fmtp:
            attributes.append(("fmtp", f"{pt} {codec.fmtp}"))
    rates = sorted({8000} | {48000 for c in codecs if c.clock_rate == 48000})
    for rate in rates:
        pt, dynamic = str(dynamic), dynamic + 1
        formats.append(pt)
        attributes += [("rtpmap", f"{pt} telephone-event/{rate}"), ("fmtp", f"{pt} {DTMF_EVENTS}")]
    attributes += [("ptime", str(DEFAULT_PTIME_MS)), ("sendrecv", None)]
    local = Connection.for_address(local_ip)
    return SessionDescription(
        origin=Origin("mediaserver", str(session_id), str(session_id), "IN", local.addrtype, local_ip),
        connection=local,
        media=[MediaDescription("audio", local_port, "RTP/AVP", formats, attributes)],
    )


def read_answer(
    answer: SessionDescription, offered: list[CodecSpec], *, protos: tuple[str, ...] = SUPPORTED_PROTOS
) -> NegotiatedMedia:
    """What an answer to our offer settled: its first audio format we offered, its address.

    Reading an answer is the same choice as answering an offer restricted to what we offered, so
    this reuses ``negotiate`` (whose own SDP is discarded; ``direction`` is then ours mirrored)."""
    return negotiate(answer, offered, "0.0.0.0", 9, session_id=0, protos=protos)
