"""`mediaserver call URI`: place one test call, speak turns, time and transcribe the replies.

Theory of operation: the call is placed by `SipCaller` (`sip_caller.py`, the same UAC the
benchmarks and loopback tests use: SIP over UDP, paced 20 ms RTP). Each turn's speech (a WAV, or
`--say` text synthesized with the bundled Piper voice) is prepared before dialling, at the
codec's rate, so that nothing slow runs during the call. Once answered, the caller streams RTP
for the whole call (silence between turns) and keeps every packet it receives with its arrival
time. It first listens for a greeting (the far end speaking first, up to `greeting_wait_s`),
then for each turn sends the speech and waits for the reply: voice activity is a decoded packet
louder than `FAR_LEVEL`, and a reply ends after `reply_silence_ms` without one (or at BYE).

Voice-to-voice of a turn is measured at this caller's wire: the monotonic send time of the last
packet of the turn carrying caller speech, to the arrival time of the first audible far-end
packet after it. After the call, the greeting and each reply are transcribed with the bundled
Whisper model, and both directions are written to `--record` as a stereo WAV (left: sent, right:
received, placed by arrival time on the caller's 20 ms grid).

`--register USER:PASS@REGISTRAR` sends REGISTER first and answers one digest challenge
(`mssip.digest`); the INVITE answers a 401/407 with the same credentials. INVITE and REGISTER
are resent over UDP until the far end answers at all; a non-2xx final response is ACKed.

Failures are `CallError` with a message and an exit code: 1 when the call itself failed (a 4xx
to 6xx, no answer, no media, no reply), 2 for what cannot be asked (bad arguments, an option
the stack does not support yet: `--tls` and `sips:`, since this UAC speaks SIP over UDP only;
`--srtp`, since the media stack has plain RTP only). A call that fails after dialling still
writes its recording and, with `--json`, its report with `error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import re
import socket
import sys
import time
import wave
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from mediaserver.rtp.packet import RtpPacket
from mediaserver.signaling.sip_caller import OFFER_CODECS, SipCaller, SipResponse, _sdp_media_addr
from mscodecs import make_codec
from mssip.digest import answer_challenge
from mssip.errors import SipError
from mssip.uac import pick_challenge
from mssip.uri import parse_uri

__all__ = ["CallError", "CallOptions", "CallReport", "TurnReport", "parse_register", "prepare", "run"]

CODECS = tuple(OFFER_CODECS)
FAR_LEVEL = 200  # peak amplitude (int16) of a received packet that counts as far-end voice
CALLER_LEVEL = 800  # peak amplitude of a sent packet that counts as caller speech
NO_MEDIA_S = 5.0  # answered, and not one RTP packet in this long: "no media"


class CallError(Exception):
    """The call tool failed: `message` for the user, `exit_code` for the shell."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Registration:
    user: str
    password: str
    host: str
    port: int


@dataclass(frozen=True)
class CallOptions:
    uri: str
    wav: str | None = None
    say: str | None = None
    record: str | None = None
    register: str | None = None
    tls: bool = False
    srtp: bool = False
    codec: str = "PCMU"
    turns: int = 1
    answer_timeout_s: float = 30.0
    greeting_wait_s: float = 5.0
    reply_timeout_s: float = 20.0
    reply_silence_ms: int = 900
    transcribe: bool = True


@dataclass
class TurnReport:
    turn: int  # 0: the far end's greeting (no voice-to-voice)
    sent_ms: int  # caller speech sent in this turn
    voice_to_voice_ms: float | None
    reply_ms: int  # first to last audible far-end packet
    transcript: str = ""


@dataclass
class CallReport:
    uri: str
    status: int
    reason: str
    codec: str
    turns: list[TurnReport] = field(default_factory=list)
    recording: str | None = None
    hung_up_by: str = ""  # "caller" or "far end" once an answered call is over
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Target:
    user: str
    host: str
    port: int


# -- what can be asked ----------------------------------------------------------------------
def parse_target(uri: str) -> Target:
    text = uri if uri.lower().startswith(("sip:", "sips:")) else f"sip:{uri}"
    try:
        parsed = parse_uri(text)
    except SipError as exc:
        raise CallError(f"{uri}: not a SIP URI ({exc})", 2) from exc
    if parsed.scheme == "sips":
        raise CallError(f"{uri}: sips: (SIP over TLS) is not supported yet by `mediaserver call`", 2)
    if parsed.scheme != "sip" or not parsed.host:
        raise CallError(f"{uri}: not a SIP URI (expected sip:user@host[:port])", 2)
    return Target(parsed.user or "", parsed.host, parsed.port or 5060)


def parse_register(value: str) -> Registration:
    """`USER:PASS@REGISTRAR[:PORT]` (the password may hold ':' but not '@')."""
    match = re.fullmatch(r"([^:@\s]+):([^@\s]*)@([^:@\s]+)(?::(\d{1,5}))?", value.strip().removeprefix("sip:"))
    if not match:
        raise CallError(f"--register {value!r}: expected USER:PASS@REGISTRAR[:PORT]", 2)
    port = int(match.group(4) or 5060)
    if not 0 < port < 65536:
        raise CallError(f"--register {value!r}: bad port {port}", 2)
    return Registration(match.group(1), match.group(2), match.group(3), port)


def check(options: CallOptions) -> Target:
    """Refuse what cannot be asked, before loading anything: raises CallError (exit code 2)."""
    if options.tls:
        raise CallError("--tls is not supported yet: `mediaserver call` speaks SIP over UDP only", 2)
    if options.srtp:
        raise CallError("--srtp is not supported yet: the media stack sends plain RTP (RTP/AVP) only", 2)
    if options.codec not in CODECS:
        raise CallError(f"--codec {options.codec!r}: one of {', '.join(CODECS)}", 2)
    if options.wav and options.say:
        raise CallError("give --wav or --say, not both", 2)
    if options.turns < 0:
        raise CallError(f"--turns {options.turns}: must be 0 or more", 2)
    if options.turns and not (options.wav or options.say):
        raise CallError("nothing to say: give --wav FILE or --say TEXT (or --turns 0 to only listen)", 2)
    if options.wav and not Path(options.wav).is_file():
        raise CallError(f"--wav {options.wav}: no such file", 2)
    if options.record and not Path(options.record).resolve().parent.is_dir():
        raise CallError(f"--record {options.record}: no such folder", 2)
    if options.register:
        parse_register(options.register)
    return parse_target(options.uri)


# -- audio ------------------------------------------------------------------------------------
def _resample(pcm: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate:
        return pcm.astype(np.int16)
    import soxr

    out: np.ndarray = soxr.resample(pcm.astype(np.float32) / 32768.0, from_rate, to_rate)
    return np.clip(np.round(out * 32767.0), -32768, 32767).astype(np.int16)


def read_wav(path: str, rate: int) -> np.ndarray:
    """A 16-bit PCM WAV as mono int16 at `rate`."""
    try:
        with wave.open(path, "rb") as wav:
            if wav.getsampwidth() != 2:
                raise CallError(f"--wav {path}: only 16-bit PCM WAV files", 2)
            channels, file_rate = wav.getnchannels(), wav.getframerate()
            data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    except (wave.Error, EOFError) as exc:
        raise CallError(f"--wav {path}: not a PCM WAV file ({exc})", 2) from exc
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return _resample(data, file_rate, rate)


def synthesize(text: str, rate: int) -> np.ndarray:
    """`text` spoken by the bundled Piper voice, mono int16 at `rate`."""
    from mediaserver.pipeline.engines.piper_tts import PiperTts

    chunks = list(PiperTts().synthesize(text))
    if not chunks:
        raise CallError(f"--say {text!r}: nothing to speak", 2)
    pcm = np.concatenate([c.pcm for c in chunks])
    return _resample(pcm, chunks[0].sample_rate, rate)


def prepare(options: CallOptions, rate: int) -> np.ndarray:
    """The speech of one turn at the codec's rate (empty for a listen-only call)."""
    if options.wav:
        return read_wav(options.wav, rate)
    if options.say:
        return synthesize(options.say, rate)
    return np.zeros(0, np.int16)


def write_stereo_wav(path: str, left: np.ndarray, right: np.ndarray, rate: int) -> None:
    n = max(len(left), len(right))
    both = np.zeros((n, 2), np.int16)
    both[: len(left), 0] = left
    both[: len(right), 1] = right
    with wave.open(path, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(both.astype("<i2").tobytes())


# -- the caller -------------------------------------------------------------------------------
class _Caller(SipCaller):
    """`SipCaller` streaming 20 ms frames for the whole call, keeping what it sent and heard."""

    async def open(self) -> None:
        await super().open()
        self._codec_out = make_codec(self.codec)
        self._codec_in = make_codec(self.codec)
        self.rate = self._codec_out.sample_rate
        self.frame = self.rate // 50
        self._outbox: list[np.ndarray] = []
        self.sent: list[np.ndarray] = []  # every frame sent, in order, on the 20 ms grid
        self.last_speech_ns = 0
        self.media_start_ns = time.monotonic_ns()
        self._heard: list[tuple[int, np.ndarray, int]] = []  # (arrival ns, pcm, peak), decoded in order
        self._decoded_upto = 0

    def start_media(self) -> None:
        self.media_start_ns = time.monotonic_ns()
        self._sender = asyncio.create_task(self._send_loop())

    async def _send_loop(self) -> None:
        assert self.remote_rtp is not None and self._rtp.transport is not None
        pt, rtpmap = OFFER_CODECS[self.codec]
        step = int(rtpmap.split("/")[1]) // 50  # RTP clock units per 20 ms
        seq, ts, ssrc = random.getrandbits(16), random.getrandbits(32), random.getrandbits(32)
        silence = np.zeros(self.frame, np.int16)
        start, n = time.monotonic(), 0
        while True:
            pcm = self._outbox.pop(0) if self._outbox else silence
            packet = RtpPacket(pt, seq, ts, ssrc, self._codec_out.encode(pcm), marker=n == 0)
            self._rtp.transport.sendto(packet.serialize(), self.remote_rtp)
            self.sent.append(pcm)
            if pcm is not silence and int(np.abs(pcm.astype(np.int32)).max()) > CALLER_LEVEL:
                self.last_speech_ns = time.monotonic_ns()
            seq, ts, n = (seq + 1) & 0xFFFF, (ts + step) & 0xFFFFFFFF, n + 1
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))

    def say(self, pcm: np.ndarray) -> None:
        padded = np.concatenate([pcm, np.zeros((-len(pcm)) % self.frame, np.int16)])
        self._outbox.extend(padded[i : i + self.frame] for i in range(0, len(padded), self.frame))

    async def until_said(self) -> None:
        while self._outbox:  # noqa: ASYNC110 - the sender drains the list on its own 20 ms grid
            await asyncio.sleep(0.02)

    async def stop_media(self) -> None:
        if hasattr(self, "_sender"):
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender

    def heard(self) -> list[tuple[int, np.ndarray, int]]:
        """Every far-end voice packet so far, decoded once, in arrival order."""
        pt = OFFER_CODECS[self.codec][0]
        received = self.received
        while self._decoded_upto < len(received):
            r = received[self._decoded_upto]
            self._decoded_upto += 1
            if r.packet.payload_type == pt:
                pcm = self._codec_in.decode(r.packet.payload)
                self._heard.append((r.arrival_ns, pcm, int(np.abs(pcm.astype(np.int32)).max()) if len(pcm) else 0))
        return self._heard

    # -- SIP with credentials ------------------------------------------------------------------
    async def invite(self, timeout: float, auth: Registration | None) -> SipResponse:
        """INVITE (answering one 401/407 challenge with `auth`); ACK and keep the media of a 2xx."""
        extra = ""
        for _ in range(2):
            self._invite_branch = f"z9hG4bK{random.getrandbits(48):012x}"
            self._invite_cseq = self._cseq = self._cseq + 1
            self.remote_tag = ""
            request = self._request(
                "INVITE", self.offer_sdp(), cseq=self._invite_cseq, branch=self._invite_branch, extra=extra
            )
            response = await self._final(timeout, functools.partial(self.send_raw, request))
            tag = re.search(r";tag=([^;>\s]+)", response.headers.get("to", ""))
            self.remote_tag = tag.group(1) if tag else ""
            if response.status < 300:
                self.send_raw(self._request("ACK", cseq=self._invite_cseq))
                try:
                    self.remote_rtp = _sdp_media_addr(response.body)
                except ValueError:
                    self.remote_rtp = None  # the caller hangs up: no media address to send to
                return response
            # A non-2xx final response is ACKed in its own transaction (RFC 3261 §17.1.1.3).
            self.send_raw(self._request("ACK", cseq=self._invite_cseq, branch=self._invite_branch))
            if response.status not in (401, 407) or auth is None or extra:
                return response
            uri = f"sip:{self.user}@{self.server[0]}:{self.server[1]}"
            extra = _authorization(response, "INVITE", uri, auth)
        return response

    async def register(self, reg: Registration, timeout: float) -> SipResponse:
        """REGISTER our contact at the registrar, answering one digest challenge."""
        registrar = await _resolve(reg.host, reg.port)
        extra = ""
        call_id = f"{random.getrandbits(64):016x}@reg"
        for cseq in (1, 2):
            branch = f"z9hG4bK{random.getrandbits(48):012x}"
            uri = f"sip:{reg.host}" + (f":{reg.port}" if reg.port != 5060 else "")
            aor = f"sip:{reg.user}@{reg.host}"
            message = (
                f"REGISTER {uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {self.local_host}:{self.sip_port};branch={branch};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <{aor}>;tag={self._tag}\r\nTo: <{aor}>\r\n"
                f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
                f"Contact: <sip:{reg.user}@{self.local_host}:{self.sip_port}>\r\nExpires: 300\r\n{extra}"
                "Content-Length: 0\r\n\r\n"
            ).encode()
            response = await self._final(timeout, functools.partial(self._send_to, message, registrar))
            if response.status not in (401, 407) or extra:
                return response
            extra = _authorization(response, "REGISTER", uri, reg)
        return response

    def _send_to(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self._sip.transport is not None
        self._sip.transport.sendto(data, addr)

    async def _final(self, timeout: float, send: Callable[[], None]) -> SipResponse:
        """Send a request and wait for its final response, resending it over UDP (T1 = 0.5 s,
        doubling up to 4 s) until the far end answers at all (RFC 3261 §17.1.1.2, §17.1.2.2)."""
        deadline = time.monotonic() + timeout
        interval: float | None = 0.5
        send()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            try:
                response = await self.next_response(min(left, interval or left))
            except TimeoutError:
                if interval is None or time.monotonic() >= deadline:
                    raise
                send()
                interval = min(interval * 2, 4.0)
                continue
            interval = None  # a response (provisional or final): no more resending
            if response.status >= 200:
                return response


def _authorization(response: SipResponse, method: str, uri: str, auth: Registration) -> str:
    header = "proxy-authenticate" if response.status == 407 else "www-authenticate"
    challenge = pick_challenge([response.headers.get(header, "")])
    if challenge is None:
        raise CallError(f"{method} challenged ({response.status}) with no digest challenge we can answer")
    credentials = answer_challenge(
        challenge,
        method=method,
        uri=uri,
        username=auth.user,
        password=auth.password,
        cnonce=f"{random.getrandbits(64):016x}",
    )
    name = "Proxy-Authorization" if response.status == 407 else "Authorization"
    return f"{name}: {credentials.header_value()}\r\n"


async def _resolve(host: str, port: int) -> tuple[str, int]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise CallError(f"cannot resolve {host}: {exc}") from exc
    return str(infos[0][4][0]), int(infos[0][4][1])


def _local_ip(remote: tuple[str, int]) -> str:
    """The address this host reaches `remote` from (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(remote)
        return str(probe.getsockname()[0])


# -- listening ---------------------------------------------------------------------------------
@dataclass
class _Heard:
    first_ns: int
    last_ns: int


async def _listen(
    caller: _Caller, *, since_ns: int, start_within_s: float, silence_ms: int, answered_ns: int
) -> _Heard | None:
    """The far end's next utterance after `since_ns`: None if none starts within `start_within_s`;
    it ends after `silence_ms` without voice, or when the far end hangs up."""
    start_deadline = time.monotonic_ns() + int(start_within_s * 1e9)
    first = last = 0
    while True:
        for arrival, _pcm, peak in caller.heard():
            if arrival >= since_ns and peak > FAR_LEVEL:
                first = first or arrival
                last = max(last, arrival)
        now = time.monotonic_ns()
        if not caller.received and now - answered_ns > NO_MEDIA_S * 1e9:
            raise CallError(f"no media: not one RTP packet from {caller.remote_rtp} in {NO_MEDIA_S:.0f} s")
        if first and (now - last >= silence_ms * 1_000_000 or caller.bye_received.is_set()):
            return _Heard(first, last)
        if not first and (now >= start_deadline or caller.bye_received.is_set()):
            return None
        await asyncio.sleep(0.02)


def _segment(caller: _Caller, heard: _Heard) -> np.ndarray:
    frames = [pcm for t, pcm, _ in caller.heard() if heard.first_ns - 200_000_000 <= t <= heard.last_ns + 200_000_000]
    return np.concatenate(frames) if frames else np.zeros(0, np.int16)


def _received_track(caller: _Caller) -> np.ndarray:
    """What came back, each packet at its arrival slot on the 20 ms grid from the media start."""
    slots: dict[int, np.ndarray] = {}
    for arrival, pcm, _ in caller.heard():
        slot = max(0, round((arrival - caller.media_start_ns) / 20e6))
        while slot in slots:
            slot += 1
        slots[slot] = pcm
    if not slots:
        return np.zeros(0, np.int16)
    track = np.zeros((max(slots) + 1) * caller.frame, np.int16)
    for slot, pcm in slots.items():
        track[slot * caller.frame : slot * caller.frame + len(pcm)] = pcm[: caller.frame]
    return track


# -- the call ---------------------------------------------------------------------------------
@dataclass
class _Session:
    """What a call left behind, complete or not: the report (without transcripts), the audio of
    each utterance heard (the greeting first when there was one), the caller (for the recording)."""

    report: CallReport
    utterances: list[np.ndarray] = field(default_factory=list)
    caller: _Caller | None = None


async def place_call(options: CallOptions, target: Target, speech: np.ndarray, session: _Session) -> None:
    """Dial, speak the turns, listen; fills `session` as it goes (raises CallError on failure)."""
    server = await _resolve(target.host, target.port)
    caller = _Caller(server, user=target.user, codec=options.codec, local_host=_local_ip(server))
    await caller.open()
    session.caller = caller
    report, utterances = session.report, session.utterances
    try:
        auth = parse_register(options.register) if options.register else None
        if auth is not None:
            caller.from_user = auth.user
            try:
                reg = await caller.register(auth, timeout=10.0)
            except TimeoutError as exc:
                raise CallError(f"registration at {auth.host}:{auth.port}: no answer in 10 s") from exc
            if reg.status >= 300:
                raise CallError(f"registration at {auth.host}:{auth.port} failed: {reg.status} {reg.reason}")
        try:
            response = await caller.invite(options.answer_timeout_s, auth)
        except TimeoutError as exc:
            raise CallError(f"{options.uri}: no final answer in {options.answer_timeout_s:g} s") from exc
        report.status, report.reason = response.status, response.reason
        if response.status >= 300:
            raise CallError(f"{options.uri}: call failed: {response.status} {response.reason}")
        if caller.remote_rtp is None:
            raise CallError(f"{options.uri}: answered without a usable SDP answer (no audio address)")
        answered_ns = time.monotonic_ns()
        caller.start_media()
        greeting = await _listen(
            caller,
            since_ns=answered_ns,
            start_within_s=options.greeting_wait_s,
            silence_ms=options.reply_silence_ms,
            answered_ns=answered_ns,
        )
        if greeting is not None:
            report.turns.append(TurnReport(0, 0, None, round((greeting.last_ns - greeting.first_ns) / 1e6) + 20))
            utterances.append(_segment(caller, greeting))
        for turn in range(1, options.turns + 1):
            if caller.bye_received.is_set():
                report.hung_up_by = "far end"
                raise CallError(f"the far end hung up before turn {turn}")
            caller.say(speech)
            await caller.until_said()
            await asyncio.sleep(0.04)  # the sender stamps the last frame as it sends it
            spoke_ns = caller.last_speech_ns
            if not spoke_ns:
                raise CallError(f"turn {turn}: the speech to send is silent (no frame louder than {CALLER_LEVEL})", 2)
            reply = await _listen(
                caller,
                since_ns=spoke_ns + 1,
                start_within_s=options.reply_timeout_s,
                silence_ms=options.reply_silence_ms,
                answered_ns=answered_ns,
            )
            if reply is None:
                why = "hung up" if caller.bye_received.is_set() else f"was silent for {options.reply_timeout_s:g} s"
                raise CallError(f"turn {turn}: no reply: the far end {why}")
            report.turns.append(
                TurnReport(
                    turn,
                    len(speech) * 1000 // caller.rate,
                    round((reply.first_ns - spoke_ns) / 1e6, 1),
                    round((reply.last_ns - reply.first_ns) / 1e6) + 20,
                )
            )
            utterances.append(_segment(caller, reply))
        if not caller.received:
            raise CallError(f"no media: not one RTP packet from {caller.remote_rtp}")
    except CallError as exc:
        report.error = str(exc)
        raise
    finally:
        await caller.stop_media()
        if caller.bye_received.is_set():
            report.hung_up_by = "far end"
        elif 200 <= report.status < 300:
            report.hung_up_by = "caller"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(caller.hangup(), 5.0)
        caller.close()


def transcribe(utterances: list[np.ndarray], rate: int) -> list[str]:
    from mediaserver.pipeline.engines.whisper_asr import WhisperRecognizer

    recognizer = WhisperRecognizer()
    return [recognizer.transcribe(_resample(pcm, rate, recognizer.sample_rate)).text.strip() for pcm in utterances]


def print_report(report: CallReport, out: TextIO) -> None:
    print(f"{report.uri}: {report.status} {report.reason}, codec {report.codec}", file=out)
    for turn in report.turns:
        if turn.turn == 0:
            print(f"greeting ({turn.reply_ms} ms): {turn.transcript!r}", file=out)
        else:
            print(
                f"turn {turn.turn}: sent {turn.sent_ms} ms, voice-to-voice {turn.voice_to_voice_ms:.0f} ms, "
                f"reply ({turn.reply_ms} ms): {turn.transcript!r}",
                file=out,
            )
    if report.recording:
        print(f"recorded {report.recording} (left: sent, right: received)", file=out)
    print(f"hung up by the {report.hung_up_by}", file=out)


def run(options: CallOptions, *, as_json: bool = False, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The `mediaserver call` command: 0 when every turn got a reply, else the error's exit code.

    A call that fails after dialling still writes its recording, and with `as_json` its report
    (with `error`), so that a trunk owner sees how far it got.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    session = _Session(CallReport(options.uri, 0, "", options.codec))
    failure: CallError | None = None
    try:
        target = check(options)
        rate = make_codec(options.codec).sample_rate
        speech = prepare(options, rate) if options.turns else np.zeros(0, np.int16)
        asyncio.run(place_call(options, target, speech, session))
    except CallError as exc:
        failure = exc
        if session.caller is None:  # nothing was dialled: nothing to report but the reason
            print(f"mediaserver call: {exc}", file=err)
            return exc.exit_code
    report, caller = session.report, session.caller
    assert caller is not None
    if options.record and caller.sent:
        write_stereo_wav(options.record, np.concatenate(caller.sent), _received_track(caller), rate)
        report.recording = options.record
    if options.transcribe and session.utterances:
        texts = transcribe(session.utterances, rate)
        for turn, text in zip(report.turns, texts, strict=False):
            turn.transcript = text
    if as_json:
        json.dump(report.as_json(), out, indent=2)
        print(file=out)
    elif 200 <= report.status < 300:
        print_report(report, out)
    if failure is not None:
        print(f"mediaserver call: {failure}", file=err)
        return failure.exit_code
    return 0
