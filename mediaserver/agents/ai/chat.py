"""`mediaserver chat`: a text conversation with an `ai` document, run by the same agent code as a call.

Theory of operation: a chat *is* a call whose caller types and whose agent's voice is text. It
runs the real `SessionRunner` (runner.py, the kernel's `AiRunner`) on a real `Call`, so the
`ai` verb's params go through `AiSessionConfig.from_params`, its tools through `make_tool_runner`
(webhooks with their `__token`, DataMap, contexts/steps, `apply_actions`), its replies through
`AiSession`, `Reply` and `run_tool_loop`, the LLM's view through `LlmView`, and its end through
the session's wrap-up (hangup_hook, the post-prompt summary delivered by `deliver_summary`). Only
the two ends of the media change, with no change to the session:

* out: the session's synthesizer is `TextVoice`, which reports each clause it is given as the
  agent's words and returns a frame of silence per word for the playout, so that every wait on
  the played cursor (`wait_played`, the opening's initial sleep) still means what it means on a
  call. The call's media is a `MediaStream` whose packets go nowhere, ticked in *virtual* time by
  `TextCall.pump` only while audio is queued (or the opening's initial sleep is owed): the agent
  never waits for a wall clock, and no attention or inactivity timer runs while the caller types.
* in: each line typed (or each `--say`) is a caller turn through the call's `AgentHandle`
  (`user_input`, as the control API sends one); no audio ever arrives, so VAD and ASR stand idle.

What happened is printed as events (`ChatPrinter`: human lines, or one JSON object a line with
`--json`): `agent` (the words spoken, clauses joined until something else happens or the agent
goes quiet), `user`, `tool_call` and `tool_result` (from `ObservedTools`, a transparent wrapper
of the SWAIG runner), one `action` per SWAIG action a function returned, the session's own call
events that show an action's effect (`ai_change_step`, `ai_change_context`, `hangup_requested`…),
`summary` (the post-prompt summary, as handed to the runner that delivers it) and `end`.

The agent's turn is over when nothing is in flight (no LLM stream open, no tool running, no
audio queued: `Activity`) for `settle_s`; then the next scripted line goes in. `/quit` or end
of input is the caller hanging up: the session ends as on a call, its summary is delivered,
and the chat returns. The document is a file or a URL fetched as a call fetches it
(kernel/fetch.py) with this chat's call id, so SDK agents mint their tokens for it.

Where: chat_media.py holds the text call (`TextCall`, `TextVoice`, `Activity`), chat_output.py
the printer and the observed tools; this module loads the document and runs the conversation.

What a chat is not: only the document's first `ai` verb runs (the verbs around it are the
call's); a SWAIG `SWML`/`transfer` action has no script to run on and is refused, shown as
`verb_unsupported`; a typed line is a finished caller turn (`user_input`), so what needs audio
(barge-in, the end-of-turn detector, ASR hints, pause mode's wake words) does not apply, the
timers of the caller's silence (attention, inactivity) never run, and hard_stop_time counts
only the time the agent spends speaking (the virtual clock).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from mediaserver.agents.ai.chat_media import Activity, Deaf, NoCache, ObservedLlm, TextCall, TextVoice
from mediaserver.agents.ai.chat_output import ChatPrinter, ObservedTools, PrintedEvents
from mediaserver.agents.ai.config import AiSessionConfig
from mediaserver.agents.ai.engines import AiEngines
from mediaserver.agents.ai.runner import SessionRunner
from mediaserver.agents.ai.tools import ToolRunner
from mediaserver.kernel.agent import AgentRegistry
from mediaserver.kernel.call import Call
from mediaserver.kernel.fetch import FetchError, call_body, fetch_swml, public_url, swml_call
from mediaserver.pipeline.llm import LanguageModel, LlmSettings
from mediaserver.swaig.gateway import make_tool_runner
from mediaserver.swaig.prompt import render_prompt
from mediaserver.swml.document import all_verbs, load_document
from mediaserver.swml.effects import Ai, AiFinished
from mediaserver.swml.errors import SwmlError

__all__ = ["ChatError", "ChatOptions", "ChatPrinter", "run_chat", "scripted", "stdin_lines"]

QUIT = "/quit"


class ChatError(Exception):
    """The chat cannot start: no such file, a failed fetch, no `ai` verb; the message says which."""


@dataclass(frozen=True)
class ChatOptions:
    """What a chat needs, built by the CLI from the settings (agents never read them)."""

    llm: LanguageModel
    model: str = ""  # [llm] model: used when the document names none
    timeout_s: float = 20.0  # [llm] timeout_s
    first_token_timeout_s: float = 8.0
    signing_key: str = ""  # [swaig] signing_key: fetches, webhooks and the post-prompt are signed
    fetch_timeout_s: float = 10.0
    envs: dict[str, Any] = field(default_factory=dict)  # [swml] envs, in the fetch body
    settle_s: float = 0.2  # nothing in flight this long: the agent's turn is over
    turn_timeout_s: float = 120.0  # an agent turn longer than this ends the chat with an error


# -- the document ------------------------------------------------------------------------------------
async def load_ai(source: str | Path, call: Call, options: ChatOptions) -> dict[str, Any]:
    """The first `ai` verb's params of a file or a URL (fetched for this call, as a call fetches)."""
    text = str(source)
    try:
        if text.lower().startswith(("http://", "https://")):
            body = call_body(swml_call(call), {}, options.envs, {})
            async with aiohttp.ClientSession(trust_env=False) as http:
                document = await fetch_swml(http, text, body, options.fetch_timeout_s, signing_key=options.signing_key)
        else:
            document = load_document(await asyncio.to_thread(Path(source).read_bytes), source=text)
    except FetchError as exc:
        raise ChatError(str(exc)) from None
    except SwmlError as exc:
        raise ChatError(f"{text}: invalid SWML: {exc}") from None
    except OSError as exc:
        raise ChatError(f"{text}: cannot read: {exc.strerror or exc}") from None
    for verb in all_verbs(document):
        if verb.name == "ai" and isinstance(verb.params, dict):
            return dict(verb.params)
    raise ChatError(f"{public_url(text)}: the document has no ai verb to chat with")


# -- the chat ----------------------------------------------------------------------------------------
async def run_chat(
    source: str | Path,
    options: ChatOptions,
    printer: ChatPrinter,
    lines: AsyncIterator[str],
    *,
    route: str = "chat",
) -> AiFinished:
    """Chat with the document's `ai` verb until the agent ends or `lines` ends (or says /quit).

    Raises `ChatError` when the document cannot be had, or an agent turn outlasts the timeout."""
    call_id = str(uuid.uuid4())
    text_call = TextCall(call_id, route, PrintedEvents(printer))
    call = text_call.call
    params = await load_ai(source, call, options)
    config = AiSessionConfig.from_params(params)
    text_call.owed = config.timing.initial_sleep_ms // 20 + 1
    activity = Activity()
    blocking = ThreadPoolExecutor(max_workers=2, thread_name_prefix="chat")
    engines = AiEngines(
        vad=Deaf,
        asr=Deaf(),
        llm=ObservedLlm(options.llm, activity),
        tts=TextVoice(printer.speech),
        blocking=blocking,
        llm_settings=partial(_llm_settings, options),
        phrase_cache=NoCache(),
        far_end_delay_ms=0,
        first_token_timeout_s=options.first_token_timeout_s,
    )
    agents = AgentRegistry()
    post_prompt_url = str(params.get("post_prompt_url") or "")

    def tools(call: Call, config: AiSessionConfig, ai: dict[str, Any]) -> ToolRunner:
        runner = make_tool_runner(call, config, ai, signing_key=options.signing_key)
        return ObservedTools(runner, printer, activity, post_prompt_url)

    runner = SessionRunner(
        engines, tool_factory=tools, render_prompt=render_prompt, default_model=options.model, agents=agents
    )
    printer.emit({"event": "start", "call_id": call_id, "source": public_url(str(source)), "route": route})
    pump = asyncio.ensure_future(text_call.pump())
    session = asyncio.ensure_future(runner(call, Ai(path="chat", verb="ai", params=params), {}))
    try:
        await _converse(session, text_call, agents, activity, printer, lines, options)
        if not session.done():
            call.remote_hung_up("the caller left the chat")  # as on a call: the summary follows
        finished = await session
    finally:
        for task in (pump, session):
            task.cancel()
        await asyncio.gather(pump, session, return_exceptions=True)
        blocking.shutdown(wait=False)
    printer.emit({"event": "end", "result": finished.result, **finished.variables})
    return finished


async def _converse(
    session: asyncio.Future[AiFinished],
    text_call: TextCall,
    agents: AgentRegistry,
    activity: Activity,
    printer: ChatPrinter,
    lines: AsyncIterator[str],
    options: ChatOptions,
) -> None:
    """The agent's turn, then each caller line, until the agent ends or the caller leaves."""
    call_id = text_call.call.call_id

    def busy() -> bool:
        return activity.busy or text_call.queued or call_id not in agents

    def quiet() -> None:
        if not busy():
            printer.flush()

    async def agent_turn() -> None:
        quiet_since: float | None = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + options.turn_timeout_s
        while not session.done():
            now = loop.time()
            if busy():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= options.settle_s:
                break
            if now > deadline:
                raise ChatError(f"the agent's turn took longer than {options.turn_timeout_s:g} s")
            await asyncio.sleep(0.01)
        printer.flush()

    await agent_turn()
    caller = aiter(lines)
    while True:
        line = await _next_line(caller, session, quiet)
        if line is None or line.strip() == QUIT:
            return
        handle = agents.get(call_id)
        if not line.strip() or handle is None:
            continue
        printer.emit({"event": "user", "text": line.strip()})
        handle.user_input(line.strip())
        await agent_turn()


async def _next_line(
    caller: AsyncIterator[str], session: asyncio.Future[AiFinished], idle: Callable[[], None]
) -> str | None:
    """The caller's next line; None when there is none or the agent ended first (it may hang up).

    While the caller types, `idle` runs every 0.1 s: what the agent says unprompted (after a
    hold, a timed action) is printed without waiting for the caller's next line."""
    if session.done():
        return None  # the agent ended (a hangup action): the caller's next line is not read
    line: asyncio.Future[str | None] = asyncio.ensure_future(anext(caller, None))
    either: list[asyncio.Future[Any]] = [line, session]
    try:
        while not line.done():
            await asyncio.wait(either, timeout=0.1, return_when=asyncio.FIRST_COMPLETED)
            if session.done():
                return None
            idle()
        return line.result()
    finally:
        line.cancel()


async def scripted(says: Iterable[str]) -> AsyncIterator[str]:
    """`--say` lines as the caller's turns."""
    for text in says:
        yield text


async def stdin_lines(stream: TextIO | None = None) -> AsyncIterator[str]:
    """Lines typed on stdin (read by a daemon thread, which never holds the process open)."""
    stream = stream or sys.stdin
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in stream:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="chat-stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line


def _llm_settings(options: ChatOptions, config: AiSessionConfig) -> LlmSettings:
    """As the app's: the document's model and knobs over [llm]'s (engine_loading.py, load_ai_engines)."""
    return config.llm_settings(options.model, options.timeout_s, options.first_token_timeout_s)
