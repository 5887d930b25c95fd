"""What starting one LLM reply costs the event loop: the server's engine against the openai SDK.

    python -m benchmarks.llm_request_cost [--requests 30] [--out FILE]

Both clients stream the same request (a 50-sentence system prompt, the conversation as plain
JSON) from the scripted LLM server of the tests (`tests/support/llm_server.py`, answering at
once) on one loop in this process. Per request it records the CPU time (`time.thread_time`) of
the loop's first step of the exchange: from the call that starts it to the first wait on the
network, which is what a reply costs the media loop in one piece. The first five requests of
each client warm its connection pool and imports and are not counted; the clients alternate,
one request each, so that the box's drift hits both alike.

* `engine`: `OpenAiLanguageModel.stream()` (aiohttp), the server's LLM engine;
* `openai_sdk`: `openai.AsyncOpenAI().chat.completions.with_streaming_response.create()`, the
  client the engine used until the capacity run traced late media frames to it (issue 16).

The JSON has p50 and max per client (n is printed; no p95 under 20 requests) and the ratio of
the p50s, the figure to trust on a noisy box. Wall-clock limits are never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.ai_harness import provenance
from mediaserver.pipeline.engines.openai_llm import OpenAiLanguageModel
from mediaserver.pipeline.llm import LlmSettings
from tests.support.llm_server import ScriptedLlmServer, Turn

WARMUP = 5
MESSAGES = [{"role": "system", "content": "You are a helpful receptionist. " * 50}, {"role": "user", "content": "Hi"}]


async def first_step_cpu_ms(start: Callable[[], Awaitable[None]]) -> float:
    """CPU ms of the first step of `start()` (until it first waits), then lets it finish."""
    began = time.thread_time()
    task = asyncio.ensure_future(start())
    await asyncio.sleep(0)  # the task's first step runs here, to its first wait on the network
    cost = (time.thread_time() - began) * 1000.0
    await task
    return cost


async def measure(requests: int) -> dict[str, list[float]]:
    import openai

    turns = [Turn(text="Hello there. How can I help?")] * (2 * (requests + WARMUP))
    async with ScriptedLlmServer(turns) as server:
        engine = OpenAiLanguageModel(server.base_url)
        sdk = openai.AsyncOpenAI(base_url=server.base_url, api_key="none", max_retries=0)

        async def via_engine() -> None:
            async for _event in engine.stream(MESSAGES, settings=LlmSettings()):
                pass

        async def via_sdk() -> None:
            async with sdk.chat.completions.with_streaming_response.create(
                model="scripted", messages=[], stream=True, extra_body={"messages": MESSAGES}
            ) as response:
                async for _line in response.iter_lines():
                    pass

        costs: dict[str, list[float]] = {"engine": [], "openai_sdk": []}
        try:
            for i in range(requests + WARMUP):
                for name, start in (("engine", via_engine), ("openai_sdk", via_sdk)):
                    cost = await first_step_cpu_ms(start)
                    if i >= WARMUP:
                        costs[name].append(cost)
        finally:
            await engine.aclose()
            await sdk.close()
    return costs


def summarize(costs: dict[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, values in costs.items():
        out[name] = {
            "n": len(values),
            "p50_ms": round(statistics.median(values), 3) if values else None,
            "max_ms": round(max(values), 3) if values else None,
        }
    engine, sdk = out["engine"]["p50_ms"], out["openai_sdk"]["p50_ms"]
    out["sdk_over_engine_p50"] = round(sdk / engine, 2) if engine and sdk else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.llm_request_cost", description=__doc__)
    parser.add_argument("--requests", type=int, default=30, help="measured requests per client")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    summary = summarize(asyncio.run(measure(args.requests)))
    result = {
        "benchmark": "llm_request_cost",
        **provenance(),
        "definition": "CPU ms (thread_time) of the loop's first step of one streaming request, until it "
        "first waits on the network; scripted LLM over loopback; warm clients",
        **summary,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
