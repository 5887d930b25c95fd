"""`mediaserver call`: what cannot be asked fails at once with a clear message (exit 2), and the
SIP failures a trunk check meets (a 4xx, a digest challenge, a registrar refusing, silence)
fail with the status and exit 1. The far ends here are small UDP fakes on loopback."""

from __future__ import annotations

import json
import re
import socket
import threading
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mediaserver.cli import main
from mediaserver.signaling.call_tool import CallError, parse_register, parse_target
from mssip.digest import Challenge, parse_credentials, verify


def call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["call", *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sip:a@127.0.0.1", "--say", "hi", "--srtp"], "--srtp is not supported yet"),
        (["sip:a@127.0.0.1", "--say", "hi", "--tls"], "--tls is not supported yet"),
        (["sips:a@127.0.0.1", "--say", "hi"], "sips: (SIP over TLS) is not supported yet"),
        (["sip:a@127.0.0.1", "--say", "hi", "--codec", "GSM"], "--codec 'GSM': one of PCMU, PCMA, G722, opus"),
        (["sip:a@127.0.0.1"], "nothing to say: give --wav FILE or --say TEXT"),
        (["sip:a@127.0.0.1", "--wav", "/nonexistent/x.wav"], "--wav /nonexistent/x.wav: no such file"),
        (["sip:a@127.0.0.1", "--say", "hi", "--turns", "-1"], "--turns -1: must be 0 or more"),
        (["sip:a@127.0.0.1", "--say", "hi", "--register", "alice@pbx"], "expected USER:PASS@REGISTRAR[:PORT]"),
        (["http://example.com", "--turns", "0"], "not a SIP URI"),
        (["sip:a@127.0.0.1", "--turns", "0", "--record", "/nonexistent/out.wav"], "no such folder"),
    ],
)
def test_what_cannot_be_asked_exits_2_with_the_reason(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, err = call(capsys, *args)
    assert code == 2
    assert err.startswith("mediaserver call: ") and message in err


def test_wav_and_say_together_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["call", "sip:a@127.0.0.1", "--wav", "x.wav", "--say", "hi"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_wav_that_is_not_16_bit_pcm_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "u8.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80" * 800)
    code, err = call(capsys, "sip:a@127.0.0.1:9", "--wav", str(path))
    assert code == 2 and "only 16-bit PCM WAV files" in err


def test_targets_and_registrations_parse() -> None:
    assert parse_target("sip:bob@10.0.0.1:5070") == parse_target("bob@10.0.0.1:5070")
    assert parse_target("sip:bob@pbx.example").port == 5060
    reg = parse_register("alice:s3:cr@pbx.example:5080")
    assert (reg.user, reg.password, reg.host, reg.port) == ("alice", "s3:cr", "pbx.example", 5080)
    with pytest.raises(CallError):
        parse_register("alice:pw@pbx:99999")


# -- fakes on loopback -----------------------------------------------------------------------
Reply = Callable[[str], str | None]


class FakeUas:
    """A UDP SIP peer answering each request with `reply(request)` (None: stay silent)."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            text = data.decode(errors="replace")
            self.requests.append(text)
            answer = self.reply(text)
            if answer is not None:
                self.sock.sendto(answer.encode(), addr)

    def __enter__(self) -> FakeUas:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def methods(self) -> list[str]:
        return [r.split(" ", 1)[0] for r in self.requests]


def response(request: str, status: str, extra: str = "") -> str:
    head = request.split("\r\n\r\n", 1)[0].split("\r\n")
    keep = [h for h in head[1:] if h.split(":", 1)[0].strip().lower() in ("via", "from", "to", "call-id", "cseq")]
    keep = [h + ";tag=fake" if h.lower().startswith("to:") and "tag=" not in h else h for h in keep]
    return f"SIP/2.0 {status}\r\n" + "\r\n".join(keep) + f"\r\n{extra}Content-Length: 0\r\n\r\n"


def header(request: str, name: str) -> str | None:
    match = re.search(rf"^{name}:\s*(.*)$", request, re.IGNORECASE | re.MULTILINE)
    return match.group(1).strip() if match else None


@pytest.fixture
def wav(tmp_path: Path) -> Iterator[Path]:
    import numpy as np

    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        t = np.arange(8000) / 8000
        w.writeframes((8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes())
    yield path


def test_a_busy_far_end_exits_1_with_the_status_and_is_acked(capsys: pytest.CaptureFixture[str], wav: Path) -> None:
    with FakeUas(lambda r: response(r, "486 Busy Here") if r.startswith("INVITE") else None) as uas:
        code, err = call(capsys, f"sip:bob@127.0.0.1:{uas.port}", "--wav", str(wav), "--no-transcript")
        assert code == 1
        assert "call failed: 486 Busy Here" in err
        for _ in range(20):
            if "ACK" in uas.methods():
                break
            threading.Event().wait(0.05)
    assert uas.methods()[:2] == ["INVITE", "ACK"]  # the 486 was ACKed (RFC 3261 §17.1.1.3)


def test_no_answer_times_out_with_exit_1(capsys: pytest.CaptureFixture[str], wav: Path) -> None:
    with FakeUas(lambda r: None) as uas:
        code, err = call(capsys, f"sip:bob@127.0.0.1:{uas.port}", "--wav", str(wav), "--answer-timeout", "1")
    assert code == 1 and "no final answer in 1 s" in err


def test_register_answers_the_registrars_digest_challenge_then_the_invite_challenge(
    capsys: pytest.CaptureFixture[str], wav: Path, tmp_path: Path
) -> None:
    challenge = Challenge(realm="pbx", nonce="n0nce", algorithm="MD5", qop=("auth",))

    def registrar(request: str) -> str | None:
        method = request.split(" ", 1)[0]
        if method == "ACK":
            return None
        name = "Authorization" if method == "REGISTER" else "Proxy-Authorization"
        creds = header(request, name)
        if creds is None:
            status = "401 Unauthorized" if method == "REGISTER" else "407 Proxy Authentication Required"
            challenge_header = "WWW-Authenticate" if method == "REGISTER" else "Proxy-Authenticate"
            return response(request, status, f"{challenge_header}: {challenge.header_value()}\r\n")
        if not verify(parse_credentials(creds), method=method, password="secret"):
            return response(request, "403 Forbidden")
        return response(request, "200 OK" if method == "REGISTER" else "480 Temporarily Unavailable")

    with FakeUas(registrar) as pbx:
        target = f"sip:bob@127.0.0.1:{pbx.port}"
        code, err = call(capsys, target, "--wav", str(wav), "--register", f"alice:secret@127.0.0.1:{pbx.port}")
        assert code == 1 and "call failed: 480 Temporarily Unavailable" in err
        assert pbx.methods()[:5] == ["REGISTER", "REGISTER", "INVITE", "ACK", "INVITE"]
        register = pbx.requests[1]
        assert header(register, "From") is not None and "sip:alice@127.0.0.1" in (header(register, "From") or "")

        wrong = f"alice:wrong@127.0.0.1:{pbx.port}"
        code, err = call(capsys, target, "--wav", str(wav), "--register", wrong, "--record", str(tmp_path / "r.wav"))
    assert code == 1 and "registration at 127.0.0.1:" in err and "failed: 403 Forbidden" in err
    assert not (tmp_path / "r.wav").exists()  # nothing was sent: nothing to record


def test_an_answer_without_media_exits_1_saying_no_media(
    capsys: pytest.CaptureFixture[str], wav: Path, tmp_path: Path
) -> None:
    sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"

    def answer(request: str) -> str | None:
        if request.startswith("INVITE"):  # answered, media to a port where nothing will ever send
            ok = response(request, "200 OK", "Content-Type: application/sdp\r\n")
            return ok.replace("Content-Length: 0\r\n\r\n", f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
        return response(request, "200 OK") if request.startswith("BYE") else None

    record = tmp_path / "out.wav"
    with FakeUas(answer) as uas:
        args = ["--wav", str(wav), "--greeting-wait", "0", "--record", str(record), "--json", "--no-transcript"]
        code = main(["call", f"sip:bob@127.0.0.1:{uas.port}", *args])
        captured = capsys.readouterr()
        assert code == 1 and "no media: not one RTP packet from ('127.0.0.1', 9) in 5 s" in captured.err
        for _ in range(20):
            if "BYE" in uas.methods():
                break
            threading.Event().wait(0.05)
    assert uas.methods() == ["INVITE", "ACK", "BYE"]  # the caller hung up the silent call
    report = json.loads(captured.out)
    assert report["status"] == 200 and report["error"].startswith("no media") and report["turns"] == []
    with wave.open(str(record)) as w:  # what was sent is recorded all the same
        assert w.getnchannels() == 2 and w.getnframes() >= 8000


def test_a_lost_invite_is_sent_again_in_the_same_transaction(capsys: pytest.CaptureFixture[str], wav: Path) -> None:
    seen: list[str] = []

    def lossy(request: str) -> str | None:
        if not request.startswith("INVITE"):
            return None
        seen.append(request)
        return response(request, "404 Not Found") if len(seen) > 1 else None  # the first one is "lost"

    with FakeUas(lossy) as uas:
        code = main(["call", f"sip:nobody@127.0.0.1:{uas.port}", "--wav", str(wav), "--json"])
        captured = capsys.readouterr()
    assert code == 1 and "call failed: 404 Not Found" in captured.err
    first, again = seen[:2]
    assert header(first, "Via") == header(again, "Via") and header(first, "CSeq") == header(again, "CSeq") == "1 INVITE"
    report = json.loads(captured.out)
    assert report["status"] == 404 and report["hung_up_by"] == "" and report["turns"] == []
