"""The webhook side of the bundled receptionist agent (config/swml/agent.yaml), in one small file.

    python examples/receptionist_tools.py [--host 127.0.0.1] [--port 3030]

Two endpoints, as a SignalWire SDK agent would serve them:

* POST /swaig: a SWAIG function call. The body names the `function` and carries its arguments
  in `argument.parsed[0]`; the reply is the SDK's `SwaigFunctionResult.to_dict()` shape:
  `{"response": text for the LLM, "action": [...]}`. Here `take_message` keeps the message and
  sets `message_taken` in the call's global data.
* POST /summary: the `post_prompt_url`. When the call ends the server POSTs the summary the LLM
  wrote for the `post_prompt` (`post_prompt_data.raw`, and `.parsed` when it is JSON).

Messages and summaries are printed and kept in memory (`app[MESSAGES]`, `app[SUMMARIES]`).
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from aiohttp import web

log = logging.getLogger("receptionist_tools")

MESSAGES: web.AppKey[list[dict[str, Any]]] = web.AppKey("messages", list)
SUMMARIES: web.AppKey[list[dict[str, Any]]] = web.AppKey("summaries", list)
DEFAULT_PORT = 3030  # the port of config/swml/agent.yaml's web_hook_url and post_prompt_url


def take_message(app: web.Application, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    name = str(args.get("name") or "").strip()
    message = str(args.get("message") or "").strip()
    if not name or not message:
        return {"response": "Ask the caller for their name and their message first."}
    app[MESSAGES].append({"name": name, "message": message, "call_id": call_id})
    log.info("message from %s: %s", name, message)
    reference = 100 + len(app[MESSAGES])
    return {
        "response": f"The message from {name} is saved as number {reference}. The practice will call back.",
        "action": [{"set_global_data": {"message_taken": True, "message_reference": reference}}],
    }


FUNCTIONS = {"take_message": take_message}


async def swaig(request: web.Request) -> web.Response:
    body = await request.json()
    name = str(body.get("function", ""))
    parsed = (body.get("argument") or {}).get("parsed") or [{}]
    args = parsed[0] if isinstance(parsed[0], dict) else {}
    function = FUNCTIONS.get(name)
    if function is None:
        return web.json_response({"response": f"The function {name} does not exist here."}, status=404)
    return web.json_response(function(request.app, args, str(body.get("call_id", ""))))


async def summary(request: web.Request) -> web.Response:
    body = await request.json()
    data = body.get("post_prompt_data") or {}
    entry = {
        "call_id": body.get("call_id"),
        "raw": data.get("raw"),
        "parsed": data.get("parsed"),
        "global_data": body.get("global_data") or {},  # take_message's set_global_data shows here
    }
    request.app[SUMMARIES].append(entry)
    log.info("call summary: %s", json.dumps(entry))
    return web.json_response({"response": "ok"})


def make_app() -> web.Application:
    app = web.Application()
    app[MESSAGES] = []
    app[SUMMARIES] = []
    app.router.add_post("/swaig", swaig)
    app.router.add_post("/summary", summary)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Webhook tools for config/swml/agent.yaml")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    web.run_app(make_app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
