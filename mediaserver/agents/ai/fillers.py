"""Fillers and wait audio: what the caller hears while the agent thinks or a function runs.

Theory of operation (schema `languages[].speech_fillers`, `SWAIG.functions[].fillers`,
`wait_file`, `wait_file_loops`):

- `speech_filler_after(reply, …)`: a speech filler breaks the silence of a slow LLM turn. When a
  reply (the greeting included) has produced no text `delay_s` after it started, the next
  phrase is spoken as the reply's own first clause, so a barge-in cuts it like any reply audio
  and it never enters the LLM history.
- `speak_filler(reply, text)`: a function's filler, spoken while its webhook runs, through
  the current reply (its audio joins the reply's, in order); returns when it has played.
- `play_loops(call, url, loops, …)`: `wait_file`, fetched (http(s)) or read (a path or
  file://) and decoded once off the loop, enqueued `loops` times (0: until cancelled, at most
  `MAX_LOOPS`); cancelling stops the playout at once.

A filler that cannot be spoken or a file that cannot be played is logged with the call id and
skipped: the function's answer matters more than its waiting music.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from urllib.parse import unquote, urlparse

import aiohttp

from mediaserver.agents.ai.reply import Reply
from mediaserver.kernel.call import Call, CallEnded
from mediaserver.pipeline.media_files import MediaFileError, decode_audio_file

__all__ = ["SPEECH_FILLER_DELAY_S", "play_loops", "speak_filler", "speech_filler_after"]

log = logging.getLogger(__name__)

SPEECH_FILLER_DELAY_S = 0.8  # an LLM turn this slow to its first word gets a speech filler
MAX_LOOPS = 100  # "loop until the function returns" is still bounded
FETCH_TIMEOUT_S = 10.0


async def speech_filler_after(
    reply: Reply, next_phrase: Callable[[], str], is_current: Callable[[], bool], delay_s: float
) -> None:
    await asyncio.sleep(delay_s)
    if reply.timing.llm_first_token or not is_current():
        return
    try:
        await reply.speak(next_phrase())
    except Exception as exc:  # a TTS failure here must not fail the reply
        log.warning("call %s: speech filler not spoken: %r", reply.call.call_id, exc)


async def speak_filler(reply: Reply, text: str) -> None:
    try:
        await reply.speak(text)
        if reply.last_mark is not None:
            await reply.call.wait_played(reply.last_mark)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("call %s: function filler not spoken: %r", reply.call.call_id, exc)


async def _load(url: str) -> str | bytes:
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        async with (
            aiohttp.ClientSession() as http,
            http.get(url, timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)) as response,
        ):
            if response.status != 200:
                raise MediaFileError(f"{url}: HTTP {response.status}")
            return await response.read()
    return unquote(parsed.path) if parsed.scheme == "file" else url


async def play_loops(call: Call, url: str, loops: int, blocking: Executor) -> None:
    rate = call.media.sample_rate
    try:
        source = await _load(url)
        pcm = await asyncio.get_running_loop().run_in_executor(blocking, decode_audio_file, source, rate)
    except (MediaFileError, aiohttp.ClientError, TimeoutError, OSError) as exc:
        log.warning("call %s: wait_file %s not played: %s", call.call_id, url.split("?")[0], exc)
        return
    if not len(pcm):
        return
    try:
        for _ in range(loops or MAX_LOOPS):
            if not await call.wait_played(call.enqueue_audio(pcm, rate)):
                return
    except CallEnded:
        return
    except asyncio.CancelledError:
        call.media.stop_playout()  # the function returned: the music stops now
        raise
