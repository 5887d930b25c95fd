"""Generated DataMap definitions and arguments for the differential test (seeded, reproducible).

Each case is (function object, args, call_data); webhook URLs point at the local test server
of `datamap_server()`, whose endpoints cover a JSON object with a list, a top-level array, an
error key, non-JSON text, an empty body, a 500 with JSON, a redirect, an echo of the request
(method, body, query, auth, headers) and a closed port.
"""

from __future__ import annotations

import json
import random
import socket
from typing import Any

from aiohttp import web

CITIES = ["New York", "boston", "São Paulo", "a&b=c d", "", "NEW YORK", 'quo"te\\slash']
STRINGS = [
    "${args.city}",
    "${lc:args.city}",
    "${enc:args.city}",
    "${ARGS.CITY}",
    "${global_data.tier}",
    "${meta_data.plan}",
    "${args.n}",
    "${args.price}",
    "${caller_id_num}",
    "${args.list[0]}",
    "${args.list[-1]}",
    "${args.list[9]}",
    "literal text",
    "${meta_data.t.${lc:args.d}}",
    "%{args.city}",
    "${fmt_ph:args.phone}",
    "${lc:enc:args.city}",
    "${args}",
    "${args.missing}",
    "${}",
    "${args.city",
    "${local_date}",
    "${prompt_vars.local_date}",
    "${input.args.city}",
    "${function}",
]
PATTERNS = ["^new", "/^New/", "york", "/YORK/i", r"\d+", "^$", ".*", "[", "/a.b/s", "/x/", "boston|paulo", "^5"]
RESPONSE_TEMPLATES = [
    "City ${args.city}",
    "Tier ${global_data.tier} plan ${meta_data.plan}",
    "N=${args.n} P=${args.price}",
    "Obj ${args.obj}",
    "List ${args.list}",
    "${input.args.city} / ${args.city}",
    "Got ${name} #${count}",
    "Method ${method} body ${body} q ${query.c}",
    "First ${array[0].name} last ${array[-1].name}",
    "Err ${error} code ${http_code} parse ${parse_error} raw ${raw_response}",
    "Out ${out}",
    "PV ${prompt_vars.local_date} GD ${global_data.tier}",
    "Auth ${auth} UA ${ua} CT ${ct}",
    "Proto ${protocol_error} ${http_req_result}",
    "T ${meta_data.t.${lc:input.args.d}}",
    "Plain",
]
ENDPOINTS = ["items", "list", "err", "text", "empty", "fail500", "redirect", "echo", "echo?c=${enc:args.city}"]
ERR = "Err ${error} code ${http_code} parse ${parse_error} raw ${raw_response} proto ${protocol_error}"
ENDPOINT_TEMPLATES = {
    "items": ["Got ${name} #${count} at ${price}", "Out ${out} for ${input.args.city}"],
    "redirect": ["Got ${name} #${count} at ${price}", "Out ${out}"],
    "list": ["First ${array[0].name} last ${array[-1].name}", "Out ${out}"],
    "echo": ["Method ${method} body ${body} q ${query.c}", "Auth ${auth} UA ${ua} CT ${ct} X ${x}"],
    "err": [ERR],
    "text": [ERR],
    "empty": [ERR],
    "fail500": [ERR + " ${name}"],
}
FOREACH_APPENDS = ["${this.name}, ", "[${this.count}]", "${this}", "${this.name} in ${input.args.city}; "]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def datamap_app() -> web.Application:
    async def items(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "name": "Widget",
                "count": 3,
                "price": 72.5,
                "items": [{"name": "a", "count": 1}, {"name": "b", "count": 2}, {"name": "c", "count": 3}],
            }
        )

    async def array(_: web.Request) -> web.Response:
        return web.json_response([{"name": "first"}, {"name": "mid"}, {"name": "last"}])

    async def err(_: web.Request) -> web.Response:
        return web.json_response({"error": "boom", "name": "E"})

    async def text(_: web.Request) -> web.Response:
        return web.Response(text="not json at all")

    async def empty(_: web.Request) -> web.Response:
        return web.Response(text="")

    async def fail500(_: web.Request) -> web.Response:
        return web.json_response({"name": "server", "error": "down"}, status=500)

    async def redirect(_: web.Request) -> web.Response:
        raise web.HTTPFound("/items")

    async def echo(request: web.Request) -> web.Response:
        body = await request.text()
        return web.json_response(
            {
                "method": request.method,
                "body": body,
                "query": dict(request.query),
                "auth": request.headers.get("Authorization", ""),
                "ua": request.headers.get("User-Agent", ""),
                "ct": request.headers.get("Content-Type", ""),
                "x": request.headers.get("X-Test", ""),
            }
        )

    app = web.Application()
    for name, handler in [
        ("items", items),
        ("list", array),
        ("err", err),
        ("text", text),
        ("empty", empty),
        ("fail500", fail500),
        ("redirect", redirect),
        ("echo", echo),
    ]:
        app.router.add_route("*", f"/{name}", handler)
    return app


def _output(rng: random.Random, templates: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"response": rng.choice(templates)}
    roll = rng.random()
    if roll < 0.3:
        out["action"] = [{"set_global_data": {"last": rng.choice(STRINGS)}}]
    elif roll < 0.4:
        out["action"] = [{"say": rng.choice(templates)}, {"toggle_functions": [{"function": "x", "active": False}]}]
    return out


def _expression(rng: random.Random, templates: list[str]) -> dict[str, Any]:
    expr: dict[str, Any] = {
        "string": rng.choice(STRINGS),
        "pattern": rng.choice(PATTERNS),
        "output": _output(rng, templates),
    }
    if rng.random() < 0.25:
        expr["nomatch-output"] = _output(rng, templates)
    if rng.random() < 0.05:
        del expr["string"]
    return expr


def _webhook(rng: random.Random, base: str, closed: str) -> dict[str, Any]:
    endpoint = rng.choice(ENDPOINTS)
    url = f"{closed}/items" if rng.random() < 0.05 else f"{base}/{endpoint}"
    if rng.random() < 0.15:
        url = url.replace("http://", "http://user:p%40ss@")
    hook: dict[str, Any] = {"url": url}
    if rng.random() < 0.6:
        hook["method"] = rng.choice(["GET", "POST", "post", "PUT", "DELETE"])
    if rng.random() < 0.4:
        hook["params"] = {"city": "${args.city}", "n": "${args.n}", "fixed": 1, "g": "${global_data.tier}"}
    if rng.random() < 0.1:
        hook["form_param"] = "payload"
    if rng.random() < 0.15:
        hook["input_args_as_params"] = rng.choice([True, "true", "false", 1])
    if rng.random() < 0.3:
        hook["headers"] = {"X-Test": rng.choice(["plain", "${args.city}"])}
    if rng.random() < 0.3:
        hook["require_args"] = rng.choice(["city", ["nope", "n"], "nope", ["nope"]])
    if rng.random() < 0.4:
        hook["error_keys"] = rng.choice(["error", ["error", "fault"], "fault", "http_code"])
    if rng.random() < 0.35:
        hook["foreach"] = {
            "input_key": rng.choice(["items", "array", "nothing"]),
            "output_key": "out",
            "append": rng.choice(FOREACH_APPENDS),
            "max": rng.choice([0, 2, "1", -1]),
        }
    templates = ENDPOINT_TEMPLATES[endpoint.split("?")[0]] if rng.random() < 0.75 else RESPONSE_TEMPLATES
    if rng.random() < 0.35:
        hook["expressions"] = [_expression(rng, templates) for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.8 or "expressions" not in hook:
        hook["output"] = _output(rng, templates)
    if rng.random() < 0.05:
        hook.pop("output", None)
        hook.pop("expressions", None)
    return hook


def generate_case(seed: int, base: str, closed: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    rng = random.Random(seed)
    data_map: dict[str, Any] = {}
    if rng.random() < 0.5:
        data_map["expressions"] = [_expression(rng, RESPONSE_TEMPLATES) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.7:
        data_map["webhooks"] = [_webhook(rng, base, closed) for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.7:
        data_map["output"] = _output(rng, RESPONSE_TEMPLATES)
    function: dict[str, Any] = {"function": "f", "description": "d", "data_map": data_map}
    if rng.random() < 0.5:
        function["meta_data"] = {"plan": "gold", "t": {"x": "from-meta", "y": 2}}
    args: dict[str, Any] = {}
    if rng.random() < 0.9:
        args["city"] = rng.choice(CITIES)
    if rng.random() < 0.6:
        args["n"] = rng.choice([0, 5, -3, 1000000])
    if rng.random() < 0.4:
        args["price"] = rng.choice([72.5, 1.25, 3.0])
    if rng.random() < 0.3:
        args["list"] = ["one", "two", "three"]
    if rng.random() < 0.2:
        args["obj"] = {"k": "v"}
    if rng.random() < 0.4:
        args["d"] = rng.choice(["X", "y", "z"])
    if rng.random() < 0.2:
        args["phone"] = rng.choice(["+1 (202) 555-0123", "2025550123", "12025550123"])
    call_data = {
        "call_id": "call-1",
        "ai_session_id": "sess-1",
        "caller_id_num": "+15551230000",
        "global_data": {"tier": rng.choice(["silver", "Gold"]), "plan": "base"},
        "prompt_vars": {"local_date": "Friday", "tier": "pv"},
    }
    return function, args, call_data


def normalise(result: Any) -> str:
    """Both engines' results as comparable text (their wording for invalid output differs)."""
    if isinstance(result, dict) and "error" in result and "response" not in result:
        return "<invalid output>"
    return json.dumps(result, sort_keys=True)
