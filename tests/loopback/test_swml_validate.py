"""`mediaserver validate FILE|URL`: path-named errors, non-zero exit; a URL gets a POSTed call body."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mediaserver", "validate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


def test_good_file_passes() -> None:
    done = validate("config/swml/ivr.yaml")
    assert done.returncode == 0, done.stderr
    assert "OK (2 sections" in done.stdout


def test_bad_file_names_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sections:\n  main:\n    - prompt: {play: 'say:hi', max_digits: many}\n")
    done = validate(str(bad))
    assert done.returncode == 1
    assert "sections.main[0].prompt.max_digits: expected an integer" in done.stderr


def test_url_is_posted_a_call_and_its_errors_are_named() -> None:
    seen: list[dict[str, object]] = []

    class Agent(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"auth": self.headers.get("Authorization"), "path": self.path, "body": body})
            reply = json.dumps({"sections": {"main": [{"play": {"urls": ["say:x", 5]}}]}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Agent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        done = validate(f"http://u:pw@127.0.0.1:{server.server_port}/agent?set=a")
    finally:
        server.shutdown()
    assert done.returncode == 1
    assert "sections.main[0].play.urls[1]: expected a string" in done.stderr
    assert "pw" not in done.stderr  # credentials never printed
    (request,) = seen
    assert request["path"] == "/agent?set=a" and str(request["auth"]).startswith("Basic ")
    assert request["body"]["call"]["call_id"]  # type: ignore[index]


def serve_once(reply: dict[str, object]) -> tuple[HTTPServer, str]:
    class Agent(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Agent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://u:secret@127.0.0.1:{server.server_port}/agent"


def test_every_error_is_printed_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sections:\n"
        "  main:\n"
        "    - play: {url: 'say:hi', volume: loud}\n"
        "    - ai: {prompt: 'You are a helpful bot'}\n"
        "    - amazon_bedrock: {prompt: {text: hi}, params: {hard_stop_time: 5}}\n"
        "    - sleep: soon\n"
    )
    done = validate(str(bad))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[:2] == [
        f"{bad}: sections.main[0].play.volume: expected a number",
        f'{bad}: sections.main[1].ai.prompt: expected an object, got a string "You are a helpful bot"',
    ]
    assert lines[2].startswith(f"{bad}: sections.main[2].amazon_bedrock.params.hard_stop_time: ")
    assert lines[3:] == [f"{bad}: sections.main[3].sleep: expected an integer", f"{bad}: 4 errors"]


def test_ai_errors_a_call_would_repair_still_fail_validate(tmp_path: Path) -> None:
    doc = tmp_path / "ai.json"
    doc.write_text(
        json.dumps({"sections": {"main": [{"ai": {"prompt": {"text": "hi"}, "params": {"ai_volume": 99}}}]}})
    )
    done = validate(str(doc))
    assert done.returncode == 1
    assert f"{doc}: sections.main[0].ai.params.ai_volume: 99 is out of range" in done.stderr


def test_expressions_and_execute_rpc_pass_and_unknown_ai_keys_are_notes(tmp_path: Path) -> None:
    doc = tmp_path / "ok.yaml"
    doc.write_text(
        "sections:\n"
        "  main:\n"
        "    - play: {url: 'say:hi', volume: '${vars.vol}', auto_answer: '${vars.answer}'}\n"
        "    - ai: {prompt: {text: hi, temperature: '${vars.t}'}, SWAIG: {functions: [], mcp_servers: []}}\n"
        "    - execute_rpc: {method: ai_unhold, call_id: abc, params: {}}\n"
    )
    done = validate(str(doc))
    assert done.returncode == 0, done.stderr
    assert "OK (1 sections, 3 top-level verbs)" in done.stdout
    assert f"{doc}: note: sections.main[1].ai.SWAIG: unknown key 'mcp_servers' (ignored)" in done.stderr


def test_url_errors_are_all_listed_without_the_password() -> None:
    server, url = serve_once({"sections": {"main": [{"ai": {"prompt": "hi"}}, {"hangup": {"reason": "bored"}}]}})
    try:
        done = validate(url)
    finally:
        server.shutdown()
    shown = url.replace("u:secret@", "")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f'{shown}: sections.main[0].ai.prompt: expected an object, got a string "hi"',
        f"{shown}: sections.main[1].hangup.reason: expected one of hangup, busy, decline",
        f"{shown}: 2 errors",
    ]
