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
