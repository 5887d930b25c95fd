"""Drive Debian's ``baresip`` (1.0.0) as a headless SIP softphone for interop tests.

One :class:`Baresip` is one baresip process with its own config directory, SIP port and control
port, all on 127.0.0.1.  No sound card, display or network beyond loopback is needed:

* microphone  -> ``aufile`` audio source reading an s16 WAV prepared by this module at the codec's
  own rate/channels (the given WAV resampled with soxr and padded with silence, or pure silence);
* speaker     -> ``aubridge`` player on a private device name that nothing reads (a null sink);
* recording   -> the ``sndfile`` audio filter, which dumps the decoded received audio of each call
  to ``<workdir>/rec/dump-<timestamp>-dec.wav`` (and what we send to ``...-enc.wav``) at the
  codec's sample rate; the file's header is finalised when the call ends;
* control     -> ``ctrl_tcp`` (netstring-framed JSON on a loopback TCP port): commands ``dial``,
  ``hangup``, ``accept``, ``quit``; the same socket streams call events (``CALL_ESTABLISHED``,
  ``CALL_CLOSED`` with the reason, ...), which is how call state is tracked.  stdout/stderr are
  collected into :attr:`Baresip.log_text` for diagnostics.

baresip 1.0's ``aufile`` source ends the call when its file runs out (reason ``"end of file"``), so
the microphone file is padded with ``mic_tail_s`` seconds of silence; use a short tail to make this
side hang up right after it has spoken.

Surprises in Debian's baresip 1.0.0 (``baresip -h`` prints "baresip v1.0.0"):

* ``aufile`` is a *source* only -- there is no file player -- hence ``sndfile`` for recording; its
  dump names have one-second resolution, so two calls started within the same second by one
  instance would share a file.
* ``net_interface lo`` fails ("net: lo: could not get network address"); ``127.0.0.1`` works.
* Its resampler (libre ``auresamp``) low-passes 16 kHz -> 8 kHz at about 1.3 kHz, which ruins
  speech for G.711, so the mic WAV is prepared at the codec's own rate (no resampling inside).
* The ``menu`` status line (``[0:00:01] audio=0/0 (bit/s)`` with carriage returns) is switched off
  with ``statmode_default off``.

Typical use::

    with Baresip("answerer", workdir=tmp / "a", auto_answer=True, mic=wav, mic_tail_s=0.8) as a, \\
         Baresip("caller", workdir=tmp / "b", codec="G722") as b:
        b.call(a.uri)
        b.wait_for("established", timeout=5)
        b.wait_for("closed", timeout=10)        # a hangs up when its WAV ends
        print(b.closed_reason, b.recording_path)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.speech import read_wav, resample, to_mono, write_wav

__all__ = [
    "BARESIP",
    "CODECS",
    "CODEC_FORMAT",
    "Baresip",
    "BaresipError",
    "BaresipEvent",
    "BaresipTimeout",
    "baresip_version",
    "find_module_dir",
    "require_baresip",
]

BARESIP: str | None = shutil.which("baresip")

#: Codec name -> the ``audio_codecs`` entry that restricts an account to exactly that codec.
CODECS: dict[str, str] = {
    "PCMU": "PCMU/8000/1",
    "PCMA": "PCMA/8000/1",
    "G722": "G722/16000/1",
    "opus": "opus/48000/2",
}
_CODEC_MODULE = {"PCMU": "g711", "PCMA": "g711", "G722": "g722", "opus": "opus"}

#: Codec name -> (clock rate, channels) of baresip's encoder/decoder for it.  The microphone WAV
#: is written in exactly this format (config ``ausrc_srate``/``ausrc_channels``) because baresip
#: 1.0's own resampler (libre ``auresamp``) uses FIR tables designed for 48 kHz: turning 16 kHz into
#: 8 kHz for G.711 low-passes at about 1.3 kHz and makes speech barely intelligible.
CODEC_FORMAT: dict[str, tuple[int, int]] = {
    "PCMU": (8000, 1),
    "PCMA": (8000, 1),
    "G722": (16000, 1),
    "opus": (48000, 2),
}

#: Friendly state names accepted by :meth:`Baresip.wait_for`, mapped to ctrl_tcp event types.
STATES: dict[str, str] = {
    "incoming": "CALL_INCOMING",
    "ringing": "CALL_RINGING",
    "progress": "CALL_PROGRESS",
    "established": "CALL_ESTABLISHED",
    "closed": "CALL_CLOSED",
}

_MODULE_DIRS = (
    "/usr/lib/baresip/modules",
    "/usr/lib/x86_64-linux-gnu/baresip/modules",
    "/usr/lib/aarch64-linux-gnu/baresip/modules",
    "/usr/local/lib/baresip/modules",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_READY = "baresip is ready."
_DEC_DUMP = re.compile(r"sndfile: dumping decode audio to (\S+\.wav)")
_ENC_DUMP = re.compile(r"sndfile: dumping encode audio to (\S+\.wav)")
_DECODER = re.compile(r"audio: Set audio decoder: (\S+) (\d+)Hz (\d+)ch")
_BIND_FAILURE = re.compile(r"(?i)address already in use|failed to listen|could not listen")


class BaresipError(RuntimeError):
    """baresip failed, misbehaved or could not be started; the message carries its last log lines."""


class BaresipTimeout(BaresipError, TimeoutError):
    """A wait on baresip timed out; the message carries its last log lines and events."""


@dataclass(frozen=True)
class BaresipEvent:
    """One ctrl_tcp event, e.g. type='CALL_CLOSED', param='Connection reset by peer'."""

    type: str
    param: str
    klass: str
    peeruri: str
    direction: str
    call_id: str
    at: float  # time.monotonic() when received
    raw: dict[str, Any] = field(repr=False, compare=False)


def find_module_dir() -> Path:
    """The directory holding baresip's ``*.so`` modules (override with $BARESIP_MODULE_PATH)."""
    env = os.environ.get("BARESIP_MODULE_PATH")
    for cand in ([env] if env else []) + list(_MODULE_DIRS):
        if cand and (Path(cand) / "g711.so").exists():
            return Path(cand)
    raise BaresipError(f"cannot find baresip modules (looked in {', '.join(_MODULE_DIRS)})")


def baresip_version() -> str:
    """E.g. '1.0.0' (parsed from the banner of ``baresip -h``)."""
    if BARESIP is None:
        raise BaresipError("baresip is not installed")
    out = subprocess.run([BARESIP, "-h"], capture_output=True, text=True, timeout=10)
    m = re.search(r"baresip v(\S+)", out.stdout + out.stderr)
    return m.group(1) if m else "unknown"


def require_baresip(*also: str, at_import: bool = False) -> None:
    """Skip when ``baresip`` (or an executable named in ``also``) is missing -- or, when the
    environment sets ``MS_REQUIRE_PEERS=1``, fail instead.

    Call it inside a test or fixture, or at module level with ``at_import=True``: then a missing
    tool skips the whole module, except under ``MS_REQUIRE_PEERS=1`` where collection goes on so
    each test fails on its own (through the fixtures, which call this again) instead of one
    collection error interrupting the whole session.
    """
    import pytest

    missing = [exe for exe in ("baresip", *also) if shutil.which(exe) is None]
    if not missing:
        return
    why = f"not installed: {', '.join(missing)} (Debian packages baresip / espeak-ng)"
    if os.environ.get("MS_REQUIRE_PEERS") == "1":
        if at_import:
            return
        pytest.fail(f"MS_REQUIRE_PEERS=1 but {why}", pytrace=False)
    pytest.skip(why, allow_module_level=True)


def _free_port() -> int:
    """A loopback port free for both TCP and UDP right now (baresip's SIP listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise BaresipError("no free loopback port")


def _netstring(payload: dict[str, Any]) -> bytes:
    raw = json.dumps(payload).encode()
    return str(len(raw)).encode() + b":" + raw + b","


class Baresip:
    """A headless baresip user agent on 127.0.0.1 (context manager; see the module docstring).

    Parameters
    ----------
    name:         label used in logs and error messages (also the SIP user part).
    workdir:      directory for config, mic WAV, recordings and ``baresip.log`` (a temp dir
                  that is deleted on :meth:`stop` when omitted).
    codec:        ``"PCMU"``, ``"PCMA"``, ``"G722"`` or ``"opus"``: the only codec offered/accepted.
    auto_answer:  answer incoming calls at once (account ``answermode=auto``).
    mic:          WAV (any rate/channels) played as the microphone; ``None`` = silence.
    mic_lead_s:   silence before the microphone WAV starts.
    mic_tail_s:   silence after it; the call is ended by *this* side when the padded file runs out.
    record:       load ``sndfile`` so received audio is written to :attr:`recording_path`.
    watchdog_s:   ``baresip -t``: the process quits by itself after this many seconds.
    extra_config: additional/overriding ``config`` keys (e.g. ``{"rtp_timeout": "5"}``).
    """

    def __init__(
        self,
        name: str = "baresip",
        *,
        workdir: str | os.PathLike[str] | None = None,
        codec: str = "PCMU",
        auto_answer: bool = False,
        mic: str | os.PathLike[str] | None = None,
        mic_lead_s: float = 0.0,
        mic_tail_s: float = 60.0,
        record: bool = True,
        watchdog_s: int = 300,
        extra_config: dict[str, str] | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {sorted(CODECS)}, not {codec!r}")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ValueError(f"name must be a plain SIP user part, not {name!r}")
        self.name = name
        self.codec = codec
        self.auto_answer = auto_answer
        self.mic = Path(mic) if mic is not None else None
        self.mic_lead_s = mic_lead_s
        self.mic_tail_s = mic_tail_s
        self.record = record
        self.watchdog_s = watchdog_s
        self.extra_config = dict(extra_config or {})
        self.startup_timeout = startup_timeout
        self._own_workdir = workdir is None
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix=f"baresip-{name}-")
        self.workdir = Path(workdir)
        self.config_dir = self.workdir / "config"
        self.rec_dir = self.workdir / "rec"
        self.log_path = self.workdir / "baresip.log"
        self.mic_path = self.workdir / "mic.wav"
        self.sip_port = 0
        self.ctrl_port = 0

        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._cond = threading.Condition()
        self._log_chunks: list[str] = []
        self._events: list[BaresipEvent] = []
        self._responses: dict[str, dict[str, Any]] = {}
        self._threads: list[threading.Thread] = []
        self._token = 0
        self._send_lock = threading.Lock()
        self._mark_event = 0  # index into _events where the current call starts
        self._mark_log = 0  # offset into the log where the current call starts
        self._finalizer: Any = None  # weakref.finalize killing the process if we are dropped

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Baresip:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Baresip {self.name} {self.codec} sip=127.0.0.1:{self.sip_port} {state}>"

    def start(self) -> Baresip:
        """Write the config, start baresip, wait for 'baresip is ready.' and connect ctrl_tcp."""
        if BARESIP is None:
            raise BaresipError("baresip is not installed (Debian package 'baresip')")
        if self._proc is not None:
            raise BaresipError(f"{self.name}: already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rec_dir.mkdir(exist_ok=True)
        self._write_mic()
        last_error: BaresipError | None = None
        for _attempt in range(3):  # a port picked as free can be grabbed by someone else meanwhile
            self.sip_port, self.ctrl_port = _free_port(), _free_port()
            while self.ctrl_port == self.sip_port:
                self.ctrl_port = _free_port()
            self._write_config()
            try:
                self._launch()
                return self
            except BaresipError as exc:
                last_error = exc
                bind_failure = bool(_BIND_FAILURE.search(self.log_text))
                self._kill()
                if not bind_failure:
                    raise
        assert last_error is not None
        raise last_error

    def stop(self, timeout: float = 5.0) -> None:
        """Quit baresip (ctrl_tcp ``quit``, then SIGTERM, then SIGKILL) and join the reader threads.

        Safe to call twice.  The log, events and recordings stay readable afterwards; a workdir
        that this object created itself is deleted.
        """
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError, BaresipError):
                self._send({"command": "quit", "token": self._next_token()})
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        self._close_socket()
        for t in self._threads:
            t.join(timeout=2.0)
        self._threads.clear()
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    # ------------------------------------------------------------------ addresses

    @property
    def uri(self) -> str:
        """The SIP URI to call this instance: ``sip:<name>@127.0.0.1:<sip_port>``."""
        return f"sip:{self.name}@127.0.0.1:{self.sip_port}"

    @property
    def aor(self) -> str:
        return f"sip:{self.name}@127.0.0.1"

    # ------------------------------------------------------------------ commands

    def command(self, command: str, params: str | None = None, timeout: float = 5.0) -> str:
        """Run a baresip long command over ctrl_tcp and return its response text; raise if not ok."""
        token = self._next_token()
        payload: dict[str, Any] = {"command": command, "token": token}
        if params is not None:
            payload["params"] = params
        self._send(payload)
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._responses:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BaresipTimeout(self._explain(f"no response to ctrl_tcp command {command!r}"))
                if not self.running and token not in self._responses:
                    raise BaresipError(self._explain(f"baresip exited during command {command!r}"))
                self._cond.wait(min(remaining, 0.2))
            resp = self._responses.pop(token)
        if not resp.get("ok", False):
            failed = f"command {command!r} {params or ''} failed: {resp.get('data')}"
            raise BaresipError(self._explain(failed))
        return str(resp.get("data", ""))

    def call(self, uri: str) -> None:
        """Dial ``uri`` (e.g. another instance's :attr:`uri`).  Resets the per-call state."""
        self._new_call_mark()
        self.command("dial", uri)

    def hangup(self) -> None:
        """Hang up the current call (no-op when there is none)."""
        self.command("hangup")

    def answer(self) -> None:
        """Accept the ringing incoming call (when not ``auto_answer``)."""
        self.command("accept")

    def expect_call(self) -> None:
        """Forget earlier calls' state before waiting for a new incoming call.

        Call it *before* the peer dials: events that arrived earlier are no longer seen by
        :meth:`wait_for`.  (Not needed for the first call of an instance.)
        """
        self._new_call_mark()

    def hangup_after(self, seconds: float, *, establish_timeout: float = 10.0) -> bool:
        """Wait for the call to be established, keep it ``seconds`` from then, hang up, wait for close.

        Returns True when we hung up, False when the remote side (or our mic running out) ended the
        call first.
        """
        established = self.wait_for("established", timeout=establish_timeout)
        assert isinstance(established, BaresipEvent)
        deadline = established.at + seconds
        with self._cond:
            while self._find_event("CALL_CLOSED") is None and time.monotonic() < deadline:
                self._cond.wait(min(0.1, max(0.0, deadline - time.monotonic())))
            if self._find_event("CALL_CLOSED") is not None:
                return False
        self.hangup()
        self.wait_for("closed", timeout=5.0)
        return True

    # ------------------------------------------------------------------ waiting

    def wait_for(self, what: str | re.Pattern[str], timeout: float = 10.0) -> BaresipEvent | re.Match[str]:
        """Wait for a call state or a log pattern, whichever ``what`` names; fail loudly on timeout.

        * ``"established"``, ``"closed"``, ``"ringing"``, ``"incoming"``, ``"progress"`` or any
          ctrl_tcp event type (``"CALL_RTPESTAB"``...): returns the first such event of the current
          call (since the last :meth:`call` / :meth:`expect_call`).  Waiting for ``established``
          fails at once if the call closes first.
        * anything else (string or compiled regex): searched in the log text produced since the
          current call began; returns the match.

        Raises :class:`BaresipTimeout` / :class:`BaresipError` (with the last log lines) on timeout
        or when baresip exits first.
        """
        event_type = None
        if isinstance(what, str):
            event_type = STATES.get(what) or (what if re.fullmatch(r"[A-Z][A-Z_]+", what) else None)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if event_type is not None:
                    ev = self._find_event(event_type)
                    if ev is not None:
                        return ev
                    if event_type == "CALL_ESTABLISHED":
                        closed = self._find_event("CALL_CLOSED")
                        if closed is not None:
                            raise BaresipError(
                                self._explain(f"call closed before it was established: {closed.param!r}")
                            )
                else:
                    pattern = what if isinstance(what, re.Pattern) else re.compile(what)
                    m = pattern.search(self._log_since(self._mark_log))
                    if m is not None:
                        return m
                if not self.running:
                    raise BaresipError(self._explain(f"baresip exited while waiting for {what!r}"))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = f"timed out after {timeout:.1f}s waiting for {what!r}"
                    raise BaresipTimeout(self._explain(timed_out))
                self._cond.wait(min(remaining, 0.2))

    # ------------------------------------------------------------------ state

    @property
    def events(self) -> list[BaresipEvent]:
        """All ctrl_tcp events received so far (all calls)."""
        with self._cond:
            return list(self._events)

    @property
    def call_events(self) -> list[BaresipEvent]:
        """Events of the current call (since the last :meth:`call` / :meth:`expect_call`)."""
        with self._cond:
            return list(self._events[self._mark_event :])

    @property
    def established(self) -> bool:
        """True once the current call was established (stays True after it closes)."""
        with self._cond:
            return self._find_event("CALL_ESTABLISHED") is not None

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._find_event("CALL_CLOSED") is not None

    @property
    def closed_reason(self) -> str | None:
        """Reason of the current call's CALL_CLOSED event, None while it is not closed.

        Seen with baresip 1.0.0: remote BYE -> ``"Connection reset by peer"``; our :meth:`hangup` ->
        ``"Connection reset by user"``; our mic file ran out -> ``"end of file"``; rejected by the
        peer -> ``"486 Rejected"``; no common codec -> ``"488 Not Acceptable Here"``.
        """
        with self._cond:
            ev = self._find_event("CALL_CLOSED")
            return None if ev is None else ev.param

    @property
    def log_text(self) -> str:
        """baresip's stdout+stderr so far (ANSI colours removed)."""
        with self._cond:
            return _ANSI.sub("", "".join(self._log_chunks))

    def tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the log."""
        return "\n".join(self.log_text.splitlines()[-lines:])

    @property
    def recording_path(self) -> Path | None:
        """WAV of the audio received in the current (or last) call; complete once the call closed.

        Written by baresip's ``sndfile`` filter after decoding: 16-bit PCM at the codec's rate and
        channel count (PCMU/PCMA 8000 Hz mono, G722 16000 Hz mono, opus 48000 Hz stereo).
        """
        return self._dump_path(_DEC_DUMP)

    @property
    def sent_recording_path(self) -> Path | None:
        """WAV of what we sent in the current (or last) call (encoder input, codec rate)."""
        return self._dump_path(_ENC_DUMP)

    @property
    def negotiated_codec(self) -> tuple[str, int, int] | None:
        """(name, rate, channels) of the current call's decoder, e.g. ('PCMU', 8000, 1); None before."""
        found = _DECODER.findall(self._log_since(self._mark_log))
        if not found:
            return None
        name, rate, channels = found[-1]
        return name, int(rate), int(channels)

    def wait_negotiated_codec(self, timeout: float = 5.0) -> tuple[str, int, int]:
        """:attr:`negotiated_codec`, waiting for baresip's decoder log line: it can trail the
        ctrl_tcp event that says the call is established (two channels, two reader threads)."""
        self.wait_for(_DECODER, timeout=timeout)
        codec = self.negotiated_codec
        if codec is None:
            raise BaresipError(self._explain("the decoder line vanished from the log"))
        return codec

    def read_recording(self) -> tuple[np.ndarray, int]:
        """(float32 samples shaped (frames, channels), sample rate) of :attr:`recording_path`."""
        path = self.recording_path
        if path is None or not path.exists():
            raise BaresipError(self._explain("no recording: did a call with audio happen (record=True)?"))
        return read_wav(path)

    # ------------------------------------------------------------------ internals

    def _write_mic(self) -> None:
        rate, channels = CODEC_FORMAT[self.codec]
        lead = np.zeros(int(self.mic_lead_s * rate), dtype=np.float32)
        tail = np.zeros(int(self.mic_tail_s * rate), dtype=np.float32)
        if self.mic is not None:
            samples, src_rate = read_wav(self.mic)
            body = resample(to_mono(samples), src_rate, rate)
        else:
            body = np.zeros(0, dtype=np.float32)
        audio = np.concatenate([lead, body, tail])
        if audio.size < rate // 10:  # aufile needs something to play
            audio = np.concatenate([audio, np.zeros(rate // 10 - audio.size, dtype=np.float32)])
        if channels > 1:
            audio = np.repeat(audio[:, None], channels, axis=1)
        write_wav(self.mic_path, audio, rate)

    def _write_config(self) -> None:
        mods = find_module_dir()
        needed = ["g711", "g722", "opus", "aufile", "aubridge", "account", "menu", "ctrl_tcp"]
        if self.record:
            needed.append("sndfile")
        missing = [m for m in needed if not (mods / f"{m}.so").exists()]
        if missing:
            raise BaresipError(f"baresip modules missing from {mods}: {', '.join(missing)}")
        null_dev = f"null-{self.name}-{os.getpid()}"
        cfg: dict[str, str] = {
            "poll_method": "epoll",
            "sip_listen": f"127.0.0.1:{self.sip_port}",
            # 'lo' does not work in 1.0.0 ("net: lo: could not get network address"); an IP does.
            "net_interface": "127.0.0.1",
            "call_local_timeout": "30",
            "call_max_calls": "4",
            "audio_player": f"aubridge,{null_dev}",
            "audio_alert": f"aubridge,{null_dev}",
            "audio_source": f"aufile,{self.mic_path}",
            "ausrc_srate": str(CODEC_FORMAT[self.codec][0]),
            "ausrc_channels": str(CODEC_FORMAT[self.codec][1]),
            "audio_level": "no",
            "rtp_stats": "no",
            "module_path": str(mods),
            "statmode_default": "off",
            "ringback_disabled": "yes",
            "ctrl_tcp_listen": f"127.0.0.1:{self.ctrl_port}",
            "snd_path": str(self.rec_dir),
        }
        cfg.update(self.extra_config)
        lines = [f"{k}\t{v}" for k, v in cfg.items()]
        lines += [f"module\t{_CODEC_MODULE[self.codec]}.so", "module\taufile.so", "module\taubridge.so"]
        if self.record:
            lines.append("module\tsndfile.so")
        lines += ["module_tmp\taccount.so", "module_app\tmenu.so", "module_app\tctrl_tcp.so"]
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "config").write_text("\n".join(lines) + "\n")
        params = [f"audio_codecs={CODECS[self.codec]}", "regint=0"]
        params.append("answermode=" + ("auto" if self.auto_answer else "manual"))
        (self.config_dir / "accounts").write_text(f"<{self.aor}>;" + ";".join(params) + "\n")
        (self.config_dir / "contacts").write_text("")

    def _launch(self) -> None:
        assert BARESIP is not None
        self._log_chunks.clear()
        self._events.clear()
        self._responses.clear()
        self._mark_event = self._mark_log = 0
        cmd = [BARESIP, "-f", str(self.config_dir), "-t", str(int(self.watchdog_s))]
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        self._finalizer = weakref.finalize(self, _kill_process, self._proc)
        reader = threading.Thread(target=self._read_output, name=f"baresip-{self.name}-out", daemon=True)
        reader.start()
        self._threads = [reader]
        self.wait_for(re.compile(re.escape(_READY)), timeout=self.startup_timeout)
        deadline = time.monotonic() + 5.0
        while True:
            try:
                self._sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1.0)
                break
            except OSError as exc:
                if time.monotonic() > deadline or not self.running:
                    failed = f"cannot connect to ctrl_tcp port {self.ctrl_port}: {exc}"
                    raise BaresipError(self._explain(failed)) from exc
                time.sleep(0.05)
        self._sock.settimeout(None)
        ctl = threading.Thread(target=self._read_ctrl, name=f"baresip-{self.name}-ctl", daemon=True)
        ctl.start()
        self._threads.append(ctl)

    def _kill(self) -> None:
        self._close_socket()
        if self._proc is not None:
            _kill_process(self._proc)
        for t in self._threads:
            t.join(timeout=2.0)
        self._threads.clear()

    def _close_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _read_output(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        with open(self.log_path, "ab") as log:
            while True:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                log.write(data)
                log.flush()
                with self._cond:
                    text = data.decode("utf-8", "replace")
                    self._log_chunks.append(text)
                    self._cond.notify_all()
        proc.wait()
        self._note(f"[harness] baresip exited with status {proc.returncode}")

    def _read_ctrl(self) -> None:
        sock = self._sock
        if sock is None:
            return
        buf = b""
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            buf += data
            while True:
                colon = buf.find(b":")
                if colon < 0:
                    break
                try:
                    length = int(buf[:colon])
                except ValueError:
                    self._note(f"[harness] bad netstring from ctrl_tcp: {buf[:80]!r}")
                    buf = b""
                    break
                end = colon + 1 + length
                if len(buf) < end + 1:
                    break
                payload, buf = buf[colon + 1 : end], buf[end + 1 :]
                try:
                    msg = json.loads(payload)
                except ValueError:
                    self._note(f"[harness] bad JSON from ctrl_tcp: {payload[:200]!r}")
                    continue
                self._dispatch(msg)
        with self._cond:
            self._cond.notify_all()

    def _dispatch(self, msg: dict[str, Any]) -> None:
        with self._cond:
            if msg.get("response"):
                self._responses[str(msg.get("token"))] = msg
            elif msg.get("event"):
                ev = BaresipEvent(
                    type=str(msg.get("type", "")),
                    param=str(msg.get("param", "")),
                    klass=str(msg.get("class", "")),
                    peeruri=str(msg.get("peeruri", "")),
                    direction=str(msg.get("direction", "")),
                    call_id=str(msg.get("id", "")),
                    at=time.monotonic(),
                    raw=msg,
                )
                self._events.append(ev)
                if ev.type.startswith("CALL_") and ev.type != "CALL_RTCP":
                    self._note(f"[event] {ev.type} {ev.param}".rstrip())
            self._cond.notify_all()

    def _note(self, text: str) -> None:
        """Add a harness line to the log (on a line of its own)."""
        with self._cond:
            if self._log_chunks and not self._log_chunks[-1].endswith("\n"):
                text = "\n" + text
            self._log_chunks.append(text + "\n")
            self._cond.notify_all()

    def _send(self, payload: dict[str, Any]) -> None:
        sock = self._sock
        if sock is None:
            raise BaresipError(self._explain("ctrl_tcp is not connected (not started, or stopped)"))
        with self._send_lock:
            sock.sendall(_netstring(payload))

    def _next_token(self) -> str:
        self._token += 1
        return f"{self.name}-{self._token}"

    def _new_call_mark(self) -> None:
        with self._cond:
            self._mark_event = len(self._events)
            self._mark_log = len("".join(self._log_chunks))

    def _find_event(self, event_type: str) -> BaresipEvent | None:
        # caller holds self._cond
        for ev in self._events[self._mark_event :]:
            if ev.type == event_type:
                return ev
        return None

    def _log_since(self, offset: int) -> str:
        with self._cond:
            return _ANSI.sub("", "".join(self._log_chunks)[offset:])

    def _dump_path(self, pattern: re.Pattern[str]) -> Path | None:
        found = pattern.findall(self._log_since(self._mark_log)) or pattern.findall(self.log_text)
        return Path(found[-1]) if found else None

    def _explain(self, what: str, lines: int = 25) -> str:
        rc = self.returncode
        status = "running" if rc is None else f"exited with status {rc}"
        events = ", ".join(f"{e.type}({e.param})" for e in self.call_events if e.type != "CALL_RTCP")
        return (
            f"[baresip {self.name!r} codec={self.codec} sip=127.0.0.1:{self.sip_port} {status}] {what}\n"
            f"  config: {self.config_dir / 'config'}\n"
            f"  events this call: {events or '(none)'}\n"
            f"  last {lines} log lines:\n" + "\n".join("    | " + ln for ln in self.tail(lines).splitlines())
        )


def _kill_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL, our own baresip process (by its pid only)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=3.0)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=3.0)
