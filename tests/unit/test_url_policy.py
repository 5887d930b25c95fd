"""`[swml] allowed_hosts` (kernel/url_policy.py): empty allows every host (the default, which the
other tests' fetches from 127.0.0.1 rely on); a list restricts SWML fetches and `request` URLs,
redirects included, and keeps private and loopback addresses out unless they are allowed. A
refused URL fails the way a failed fetch always has: a clear log line, the apology, the hangup
(or `request_result = failed` for `request`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from mediaserver.errors import HangupCause
from mediaserver.kernel.services import SwmlOptions
from mediaserver.kernel.url_policy import UrlPolicy, UrlRefused, entry_problem
from mediaserver.settings import ConfigError, load_settings
from tests.scenario.test_swml_executor import Harness

SWML = {"version": "1.0.0", "sections": {"main": [{"play": {"url": "say:fetched"}}]}}


def fixed(*addresses: str) -> Any:
    """A resolver that answers `addresses` for every name (no DNS in the tests)."""

    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


async def refusal(policy: UrlPolicy, url: str) -> str | None:
    try:
        await policy.check(url)
    except UrlRefused as refused:
        return str(refused)
    return None


# -- the policy -------------------------------------------------------------------------------


async def test_an_empty_list_allows_everything_as_before() -> None:
    policy = UrlPolicy()
    assert not policy.restricts
    for url in ("http://127.0.0.1:9/x", "http://169.254.169.254/latest/meta-data", "ftp://x/y", "http://10.1.2.3/"):
        assert await refusal(policy, url) is None
    assert not SwmlOptions().url_policy.restricts  # the executor's default


async def test_listed_names_wildcards_addresses_and_networks() -> None:
    policy = UrlPolicy.from_entries(
        ["agent.example.com", "*.tools.example.com", "203.0.113.7", "198.51.100.0/24"], resolve=fixed("93.184.216.34")
    )
    assert policy.restricts
    for url in (
        "https://agent.example.com/swml",
        "http://AGENT.example.com.:8080/x?y=1",
        "https://a.tools.example.com/hook",
        "http://203.0.113.7/x",
        "http://198.51.100.99:3000/",
    ):
        assert await refusal(policy, url) is None, url
    assert await refusal(policy, "https://evil.example.net/") == "host evil.example.net is not in [swml] allowed_hosts"
    assert "not in [swml] allowed_hosts" in (await refusal(policy, "https://tools.example.com/") or "")
    assert "not in [swml] allowed_hosts" in (await refusal(policy, "http://203.0.113.8/") or "")
    assert "only http and https" in (await refusal(policy, "file:///etc/passwd") or "")
    assert "only http and https" in (await refusal(policy, "ftp://agent.example.com/x") or "")


async def test_private_and_loopback_addresses_are_refused_unless_allowed() -> None:
    policy = UrlPolicy.from_entries(["*.example.com", "agent.example.com"], resolve=fixed("127.0.0.1"))
    for url in (
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://169.254.169.254/",
        "http://10.0.0.1/",
        "http://[::ffff:127.0.0.1]/",
    ):
        assert "not in [swml] allowed_hosts" in (await refusal(policy, url) or ""), url
    # a wildcard name pointing inside (DNS of a name we do not control): refused, and says how to allow it
    reason = await refusal(policy, "http://rebind.example.com/")
    assert reason == (
        "host rebind.example.com resolves to the non-public address 127.0.0.1: "
        "list that address or its network in [swml] allowed_hosts to allow it"
    )
    for inside in ("10.0.0.8", "192.168.1.2", "169.254.169.254", "100.64.0.1", "fd00::1", "fe80::1", "::ffff:10.0.0.1"):
        wildcard = UrlPolicy.from_entries(["*.example.com"], resolve=fixed("93.184.216.34", inside))
        assert "non-public address" in (await refusal(wildcard, "http://x.example.com/") or ""), inside
    # an exactly listed name may point anywhere: the operator named it
    assert await refusal(policy, "http://agent.example.com/") is None
    # allowed by address: a literal, a network, or what a wildcard name resolves to
    allowed = UrlPolicy.from_entries(["127.0.0.1", "10.0.0.0/8", "*.example.com"], resolve=fixed("10.9.8.7"))
    for url in ("http://127.0.0.1:8080/", "http://10.1.2.3/", "http://x.example.com/"):
        assert await refusal(allowed, url) is None, url
    assert await refusal(UrlPolicy.from_entries(["::1"]), "http://[::1]:3000/") is None


async def test_an_unresolvable_name_is_refused_with_the_reason() -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    policy = UrlPolicy.from_entries(["*.example.com"], resolve=nxdomain)
    assert await refusal(policy, "http://gone.example.com/") == (
        "host gone.example.com cannot be resolved (Name or service not known)"
    )


async def test_a_refusal_is_logged_once_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    policy = UrlPolicy.from_entries(["agent.example.com"])
    with caplog.at_level(logging.WARNING, logger="mediaserver.kernel.url_policy"):
        assert await refusal(policy, "http://user:hunter2@10.0.0.5/swml") is not None
    [record] = caplog.records
    assert record.getMessage() == "URL refused by [swml] allowed_hosts"
    assert record.url == "http://10.0.0.5/swml"  # type: ignore[attr-defined]
    assert record.reason == "host 10.0.0.5 is not in [swml] allowed_hosts"  # type: ignore[attr-defined]
    assert "hunter2" not in repr(record.__dict__)


def test_bad_entries_are_named() -> None:
    assert entry_problem("agent.example.com") is None and entry_problem("*.example.com") is None
    assert entry_problem("10.0.0.0/8") is None and entry_problem("[::1]") is None
    assert "is a URL" in (entry_problem("https://agent.example.com") or "")
    assert "no scheme or port" in (entry_problem("agent.example.com:3000") or "")
    assert "not an IP address or network" in (entry_problem("10.0.0.0/33") or "")
    assert entry_problem("") == "an empty host"
    with pytest.raises(ValueError, match="is a URL"):
        UrlPolicy.from_entries(["http://x"])


# -- the setting ------------------------------------------------------------------------------


def test_the_setting_is_empty_by_default_and_read_when_set(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("")
    assert load_settings(config, environ={}).swml.allowed_hosts == ()
    config.write_text('[swml]\nallowed_hosts = ["agent.example.com", " 10.0.0.0/8 "]\n')
    swml = load_settings(config, environ={}).swml
    assert swml.allowed_hosts == ("agent.example.com", "10.0.0.0/8")
    policy = SwmlOptions.from_settings(swml).url_policy
    assert policy.restricts and policy.names == frozenset({"agent.example.com"})
    config.write_text('[swml]\nallowed_hosts = ["http://agent.example.com/"]\n')
    with pytest.raises(ConfigError, match=r"swml.allowed_hosts.*is a URL"):
        load_settings(config, environ={})


# -- on a call: fetch, execute, request -------------------------------------------------------


@pytest.fixture
async def web_server() -> AsyncIterator[tuple[str, list[str]]]:
    """SWML at /agent, a redirect to another host at /away, JSON at /api (all on 127.0.0.1)."""
    seen: list[str] = []

    async def agent(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response(SWML)

    async def away(request: web.Request) -> web.Response:
        seen.append(request.path)
        raise web.HTTPTemporaryRedirect("http://169.254.169.254/latest/meta-data")

    async def api(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"ok": True})

    async def hop(request: web.Request) -> web.Response:
        seen.append(request.path)
        raise web.HTTPFound("/api")

    app = web.Application()
    app.router.add_post("/agent", agent)
    app.router.add_route("*", "/away", away)
    app.router.add_route("*", "/api", api)
    app.router.add_route("*", "/hop", hop)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


def restrict(harness: Harness, *entries: str) -> None:
    harness.options = replace(harness.options, url_policy=UrlPolicy.from_entries(entries))


async def test_an_allowed_host_is_fetched(tmp_path: Path, web_server: tuple[str, list[str]]) -> None:
    base, seen = web_server
    harness = Harness(tmp_path)
    restrict(harness, "agent.example.com", "127.0.0.1")
    async with aiohttp.ClientSession() as http:
        await harness.run({"main": [{"execute": {"dest": f"{base}/agent"}}]}, http=http)
    assert harness.tts.spoken == ["fetched"] and seen == ["/agent"]


async def test_a_disallowed_host_is_refused_with_the_apology(
    tmp_path: Path, web_server: tuple[str, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    base, seen = web_server
    harness = Harness(tmp_path)
    restrict(harness, "agent.example.com")
    with caplog.at_level(logging.WARNING, logger="mediaserver.kernel.url_policy"):
        async with aiohttp.ClientSession() as http:
            await harness.run(
                {"main": [{"transfer": {"dest": f"{base}/agent"}}, {"play": {"url": "say:never"}}]}, http=http
            )
    assert seen == []  # nothing was sent
    assert harness.tts.spoken == ["Sorry, goodbye."]  # the apology, as for any failed fetch
    assert harness.call.cause is HangupCause.SWML_ERROR
    [failed] = harness.events("swml_fetch_failed")
    assert failed["error"] == f"{base}/agent: refused: host 127.0.0.1 is not in [swml] allowed_hosts"
    # one line saying why, then the call's own error events (as for any failed fetch)
    assert [r.getMessage() for r in caplog.records] == [
        "URL refused by [swml] allowed_hosts",
        "swml_fetch_failed",
        "swml_error",
    ]
    assert caplog.records[0].reason == "host 127.0.0.1 is not in [swml] allowed_hosts"  # type: ignore[attr-defined]


async def test_a_redirect_to_a_disallowed_host_is_refused(tmp_path: Path, web_server: tuple[str, list[str]]) -> None:
    base, seen = web_server
    harness = Harness(tmp_path)
    restrict(harness, "127.0.0.1")
    async with aiohttp.ClientSession() as http:
        await harness.run({"main": [{"execute": {"dest": f"{base}/away"}}]}, http=http)
    assert seen == ["/away"]
    assert harness.tts.spoken == ["Sorry, goodbye."]
    [failed] = harness.events("swml_fetch_failed")
    assert "redirected to http://169.254.169.254/latest/meta-data" in failed["error"]
    assert "host 169.254.169.254 is not in [swml] allowed_hosts" in failed["error"]


async def test_request_urls_are_checked_and_redirects_followed_only_when_allowed(
    tmp_path: Path, web_server: tuple[str, list[str]]
) -> None:
    base, seen = web_server
    harness = Harness(tmp_path)
    restrict(harness, "127.0.0.1")
    async with aiohttp.ClientSession() as http:
        await harness.run(
            {
                "main": [
                    {"request": {"url": f"{base}/hop", "method": "GET"}},
                    {"play": {"url": "say:${request_result} ${request_response_code}"}},
                    {"request": {"url": f"{base}/away", "method": "GET"}},
                    {"play": {"url": "say:${request_result}"}},
                    {"request": {"url": "http://10.0.0.1/admin", "method": "POST", "body": {"x": 1}}},
                    {"play": {"url": "say:${request_result}"}},
                ]
            },
            http=http,
        )
    assert harness.tts.spoken == ["success 200", "failed", "failed"]  # a script branches on it, as on errors
    assert seen == ["/hop", "/api", "/away"]  # the metadata address and 10.0.0.1 were never asked
    errors = [e["error"] for e in harness.events("request_failed")]
    assert errors == [
        "refused: host 169.254.169.254 is not in [swml] allowed_hosts",
        "refused: host 10.0.0.1 is not in [swml] allowed_hosts",
    ]


async def test_without_a_list_request_and_fetch_behave_as_before(
    tmp_path: Path, web_server: tuple[str, list[str]]
) -> None:
    base, seen = web_server
    harness = Harness(tmp_path)
    async with aiohttp.ClientSession() as http:
        await harness.run(
            {
                "main": [
                    {"request": {"url": f"{base}/hop", "method": "GET"}},
                    {"play": {"url": "say:${request_result}"}},
                    {"execute": {"dest": f"{base}/agent"}},
                ]
            },
            http=http,
        )
    assert harness.tts.spoken == ["success", "fetched"] and seen == ["/hop", "/api", "/agent"]


# -- the AI's session: SWAIG, DataMap, post-prompt and hook URLs ------------------------------


async def test_swaig_webhooks_obey_the_list(web_server: tuple[str, list[str]]) -> None:
    from mediaserver.kernel.url_policy import guarded_session
    from mediaserver.swaig.client import post_json

    base, seen = web_server
    async with guarded_session(UrlPolicy.from_entries(["agent.example.com"]), purpose="swaig") as http:
        reply = await post_json(http, f"{base}/api", {"function": "lookup"}, retries=0)
    assert seen == []  # refused before any connection
    assert not reply.ok and "host 127.0.0.1 is not in [swml] allowed_hosts" in reply.error
    async with guarded_session(UrlPolicy.from_entries(["127.0.0.1"]), purpose="swaig") as http:
        reply = await post_json(http, f"{base}/api", {"function": "lookup"}, retries=0)
    assert reply.ok and reply.data == {"ok": True} and seen == ["/api"]


async def test_a_webhook_redirect_off_the_list_is_refused(web_server: tuple[str, list[str]]) -> None:
    from mediaserver.kernel.url_policy import guarded_session
    from mediaserver.swaig.datamap import run_datamap

    base, seen = web_server
    function = {
        "function": "f",
        "data_map": {"webhooks": [{"url": f"{base}/away", "method": "GET", "output": {"response": "reached"}}]},
    }
    async with guarded_session(UrlPolicy.from_entries(["127.0.0.1"]), purpose="swaig") as http:
        result = await run_datamap(function, {}, http=http)
    assert seen == ["/away"]  # the first hop was allowed; the redirect to the metadata address was not
    assert "reached" not in str(result)


async def test_without_a_list_the_ai_session_is_plain(web_server: tuple[str, list[str]]) -> None:
    from mediaserver.kernel.url_policy import guarded_session

    async with guarded_session(UrlPolicy(), purpose="swaig") as http:
        assert not http.trace_configs
