"""Container health check: GET /health on the configured HTTP port answers status ok."""

import json
import os
import sys
import urllib.request

port = os.environ.get("MS_HTTP_PORT", "8080")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
        sys.exit(0 if json.loads(response.read()).get("status") == "ok" else 1)
except Exception as exc:  # any failure is "unhealthy"; the message lands in `docker inspect`
    print(f"unhealthy: {exc}")
    sys.exit(1)
