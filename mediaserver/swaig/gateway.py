"""`SwaigToolRunner`: the AI session's tools, from an `ai` verb's SWAIG block, run for real.

Theory of operation: one runner per `ai` verb. `tool_definitions()` lists what the LLM may
call now: the active user functions (narrowed by the current step's whitelist), the listed
native functions and the injected navigation tools of contexts/steps. `invoke()` takes one tool
call and always returns a `ToolOutcome`, never raises for a bad agent:

1. guards (repeats, phantoms, too many calls in a turn) may answer without dispatching;
2. arguments are parsed (bad JSON → a sentence asking the model to retry);
3. dispatch: `next_step`/`change_context`/`gather_submit` → the `ContextEngine`; natives →
   `run_native`; `data_map` → the DataMap engine; else POST the §4.2 body to the function's
   URL (its own over the defaults', `__token` kept, userinfo → basic auth);
4. the reply's `action` list is applied in order through `AiControl` (`apply_actions`), then
   `response` (text, or `{tool_result, tool_prompt}`) is `${}`-expanded against the current
   global_data and handed back with the actions (`replace_in_history` among them tells the
   session to drop or replace the pair after this turn);
5. a webhook timeout, HTTP error or non-JSON reply gives a response that tells the model the
   function failed and to apologise and offer another way: a spoken recovery, not dead air.

A step or context move (tool or action) speaks the context's `enter_fillers` or the
`internal_fillers` of next_step/change_context; `StepFlow` (step_flow.py) queues what it does to
the history (step history modes, isolated/reset contexts) and `replace_in_history` pairs, which
the session takes with `take_history_ops()`; a gather_info answer's pair is dropped the same way.
`turn_done()` (after each agent turn) applies `end`, `skip_to_next_step` and `skip_user_turn`.

While a webhook runs, the function's own `fillers` are spoken (first, when `wait_for_fillers`)
and its `wait_file` plays `wait_file_loops` times (or until the reply) (waiting.py), through
the session's `SessionRecord` (session_record.py), which `start(control)` takes from the
control when it has one; the record also gives the bodies their timestamped `call_log`/`raw_call_log`, `SWMLVars`/
`SWMLCall` and the post-prompt dates and `times`. A declared `check_for_input` is polled from
`start` until `finish`/`close` (input_poll.py). Every POST is signed when the app gives a
`signing_key` ([swaig] signing_key; signing.py).

Each call is appended to `swaig_log` (for the post-prompt body). Besides the `ToolRunner`
Protocol the runner offers `begin_turn()` (reset the loop guards when the caller speaks; a
session that does not call it still gets per-turn guards from `AiControl.user_turns()`),
`system_prompt(base)` (base + the current step block once: the session rebuilds the system
message per request), `start(control)` (includes, then startup_hook) and `finish(global_data, summary,
history)` (hangup_hook, then the post-prompt summary POST; hooks.py, post_prompt.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Protocol

import aiohttp

from mediaserver.clock import wall_time
from mediaserver.swaig.actions import apply_actions
from mediaserver.swaig.client import post_json
from mediaserver.swaig.contexts import ContextEngine, NavigationError
from mediaserver.swaig.datamap import run_datamap
from mediaserver.swaig.functions import FunctionSet, SwaigFunction
from mediaserver.swaig.guards import ToolGuards, Verdict
from mediaserver.swaig.history_ops import HistoryOp, ReplacePair, replacement_of
from mediaserver.swaig.hooks import run_hangup_hook, run_startup_hook
from mediaserver.swaig.input_poll import start_polling
from mediaserver.swaig.natives import NativeEnv, run_native
from mediaserver.swaig.prompt import expand_prompt, prompt_vars
from mediaserver.swaig.request import swaig_request
from mediaserver.swaig.seam import AiControl, CallInfo, ToolInvocation, ToolOutcome
from mediaserver.swaig.session_record import SessionRecord
from mediaserver.swaig.step_flow import StepFlow
from mediaserver.swaig.templates import as_dict
from mediaserver.swaig.waiting import FunctionWait

__all__ = ["CallFacts", "SwaigToolRunner", "call_info_from", "make_tool_runner"]

log = logging.getLogger(__name__)

NAVIGATION = ("next_step", "change_context", "gather_submit")
EMPTY_REPLY = "Action completed."
# Per attempt (one retry on timeout/5xx). The platform waits up to 120 s, but a caller on a live
# line should not sit through minutes of fillers: 30 s bounds the silence at about a minute.
WEBHOOK_TIMEOUT_S = 30.0


def _failure_text(name: str, why: str) -> str:
    return (
        f"The function {name} failed ({why}). Tell the caller briefly that you could not complete that "
        "just now, and offer to try again or help another way."
    )


class SwaigToolRunner:
    def __init__(
        self,
        ai: dict[str, Any],
        call: CallInfo,
        *,
        http: aiohttp.ClientSession | None = None,
        signing_key: str = "",
        webhook_timeout_s: float = WEBHOOK_TIMEOUT_S,
        now_s: Callable[[], float] = wall_time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        call_log: Callable[[], list[dict[str, Any]]] | None = None,
    ) -> None:
        self.ai = ai
        self.call = call
        self.params = as_dict(ai.get("params"))
        self.functions = FunctionSet.from_swaig(ai.get("SWAIG"))
        contexts = as_dict(ai.get("prompt")).get("contexts")
        self.pom_format = str(self.params.get("pom_format") or "markdown")
        self.contexts = ContextEngine(contexts, self.pom_format) if isinstance(contexts, dict) and contexts else None
        self.flow = StepFlow(self.contexts) if self.contexts is not None else None
        self._history_ops: list[HistoryOp] = []  # replace_in_history pairs
        self._tool_call_id = ""  # the invocation being run (replace_in_history names its pair)
        self.guards = ToolGuards()
        self.signing_key = signing_key
        self.webhook_timeout_s = webhook_timeout_s
        self.now_s = now_s
        self.sleep = sleep
        self.call_log = call_log or (lambda: [])
        self.swaig_log: list[dict[str, Any]] = []
        self.meta: dict[str, dict[str, Any]] = {}  # meta_data scope -> values set by set_meta_data
        self.bailed = ""  # the guard reason when the last call bailed out of the tool loop
        self._http = http
        self._own_http: aiohttp.ClientSession | None = None
        self._scope = ""
        self._control: AiControl | None = None
        self._filler_turn = 0
        self._user_turns = -1  # control.user_turns() at the last call
        self.record: SessionRecord | None = None  # the ai session's, bound by start()
        self._poller: asyncio.Task[None] | None = None
        self.waiting = FunctionWait()  # fillers and wait_file while a webhook runs (waiting.py)
        for warning in self.functions.warnings:
            log.warning("%s", warning)

    # -- HTTP --------------------------------------------------------------------------------
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._own_http = self._http = aiohttp.ClientSession(trust_env=False)
        return self._http

    def raw_call_log(self) -> list[dict[str, Any]]:
        return self.record.raw_call_log() if self.record is not None else self.call_log()

    async def close(self) -> None:
        self._stop_polling()
        self.waiting.close()
        if self._own_http is not None:
            await self._own_http.close()
            self._own_http = self._http = None

    async def load_includes(self) -> int:
        """POST `get_signature` to each `SWAIG.includes` URL and add the functions returned.

        Returns how many were added; an unreachable include is logged and skipped (the SDK's
        simple_agent lists one that never answers).
        """
        swaig = as_dict(self.ai.get("SWAIG"))
        raw_includes = swaig.get("includes")
        includes: list[Any] = raw_includes if isinstance(raw_includes, list) else []
        added = 0
        for index, include in enumerate(includes):
            if not isinstance(include, dict) or not isinstance(include.get("url"), str):
                log.warning("SWAIG.includes[%d]: needs a url; skipped", index)
                continue
            wanted = [str(n) for n in include.get("functions") or []]
            body: dict[str, Any] = {"action": "get_signature", "functions": wanted}
            if isinstance(include.get("meta_data"), dict):
                body["meta_data"] = include["meta_data"]
            reply = await post_json(
                self.http(), include["url"], body, timeout_s=10.0, retries=0, signing_key=self.signing_key
            )
            if not reply.ok or not isinstance(reply.data, list):
                log.warning("SWAIG.includes[%d]: %s", index, reply.error or "reply is not a list of functions")
                continue
            for n, raw in enumerate(reply.data):
                if isinstance(raw, dict) and (not wanted or raw.get("function") in wanted):
                    raw = dict(raw)
                    raw.setdefault("web_hook_url", include["url"])
                    self.functions.add(raw, f"SWAIG.includes[{index}].reply[{n}]")
                    added += 1
        return added

    # -- lifecycle (the session calls these when present, like close()) -----------------------
    async def start(self, control: AiControl) -> None:
        """Before the first turn: functions from `includes`, then startup_hook (§4.3)."""
        self._control = control
        if isinstance(control, SessionRecord):
            self.bind(control)
        await self.load_includes()
        await run_startup_hook(self, control)
        self._start_polling(control)

    def bind(self, record: SessionRecord) -> None:
        """Read the conversation, SWML variables and call from the session from now on."""
        self.record = record
        self.call_log = record.call_log
        # The live variables object: a later change (ai_agents_global_data) shows in later bodies.
        self.call = replace(self.call, call=record.swml_call(), vars=record.swml_vars())

    def _start_polling(self, control: AiControl) -> None:
        if self._poller is None:
            self._poller = start_polling(self, control, self.sleep)

    def _stop_polling(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None

    async def finish(
        self, global_data: dict[str, Any], summary: str | None = None, history: list[dict[str, Any]] | None = None
    ) -> None:
        """When the AI ends: hangup_hook, then the post-prompt summary when there is one (§4.4)."""
        from mediaserver.swaig.post_prompt import deliver_summary, usage_totals

        self._stop_polling()
        await run_hangup_hook(self, global_data)
        url = self.ai.get("post_prompt_url")
        if summary is not None and isinstance(url, str) and url:
            record = self.record
            call_log = record.call_log() if record is not None else history if history is not None else []
            await deliver_summary(
                self.http(),
                url,
                summary,
                call=self.call,
                params=self.params,
                global_data=global_data,
                call_log=call_log,
                swaig_log=self.swaig_log,
                signing_key=self.signing_key,
                raw_call_log=record.raw_call_log() if record is not None else None,
                times_us=record.dates_us() if record is not None else None,
                times=record.response_times() if record is not None else None,
                totals=usage_totals(record),  # params.enable_accounting
            )

    # -- ToolRunner --------------------------------------------------------------------------
    def tool_definitions(self) -> list[dict[str, Any]]:
        allowed = self.contexts.allowed_functions() if self.contexts else None
        tools = self.functions.definitions(allowed)
        if self.contexts is not None:
            tools += self.contexts.definitions()
        return tools

    def valid_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.tool_definitions()]

    def begin_turn(self) -> None:
        self.guards.begin_turn()
        self.bailed = ""

    def system_prompt(self, base: str) -> str:
        """`base` (the verb's prompt + conscience, no step block) plus the current step block."""
        return self.flow.system_prompt(base) if self.flow is not None else base

    def take_history_ops(self) -> list[HistoryOp]:
        """What the session must do to the LLM history since the last call (history_ops.py)."""
        ops, self._history_ops = self._history_ops, []
        return ops + (self.flow.take_ops() if self.flow is not None else [])

    def turn_done(self) -> bool:
        """The agent ended a turn: `end`, `skip_to_next_step`; True: speak on (`skip_user_turn`)."""
        if self.flow is None:
            return False
        auto, entered = self.flow.turn_done()
        if entered is not None and self._control is not None:
            self._entered("next_step", self._control)
            self._control.change_step(entered)
        return auto

    async def invoke(self, invocation: ToolInvocation, control: AiControl) -> ToolOutcome:
        self._control = control
        self._tool_call_id = invocation.id
        turns = control.user_turns()  # a new caller turn since the last call: per-turn guards reset
        if turns != self._user_turns:
            self._user_turns = turns
            self.begin_turn()
        verdict = self.guards.check(invocation.name, invocation.arguments, self.valid_names())
        if verdict.verdict is not Verdict.RUN:
            if verdict.verdict is Verdict.BAIL:
                self.bailed = verdict.reason
            log.info("tool guard: %s %s", verdict.verdict.value, invocation.name)
            return ToolOutcome(response=verdict.response)
        try:
            parsed = json.loads(invocation.arguments or "{}")
        except json.JSONDecodeError as exc:
            return ToolOutcome(
                response=f"The arguments for {invocation.name} were not valid JSON ({exc.msg}). "
                "Call it again with a JSON object."
            )
        except (ValueError, RecursionError):  # an int of > 4300 digits, nested too deeply
            return ToolOutcome(
                response=f"The arguments for {invocation.name} could not be read. Call it again with a JSON object."
            )
        args = parsed if isinstance(parsed, dict) else {}
        name = invocation.name
        if name in NAVIGATION:
            return self._navigate(name, args, control)
        if name in self.functions.natives:
            text = await run_native(
                name,
                args,
                control,
                NativeEnv(self.now_s(), str(self.params.get("local_tz") or "US/Central"), self.sleep),
            )
            return ToolOutcome(response=text)
        fn = self.functions.functions[name]
        return await self._run_function(fn, invocation.arguments, args, control)

    # -- dispatch ----------------------------------------------------------------------------
    def _navigate(self, name: str, args: dict[str, Any], control: AiControl) -> ToolOutcome:
        engine, flow = self.contexts, self.flow
        if engine is None or flow is None:
            return ToolOutcome(response=f"{name} is not available.")
        try:
            # the history ops are queued before the session hears of the move: it takes them then
            if name == "next_step":
                entered = flow.move(name, lambda: engine.go_step(str(args.get("step", ""))))
                self._entered(name, control)
                control.change_step(entered)
                return ToolOutcome(response=f"Now in step '{entered}'. Follow its instructions.")
            if name == "change_context":
                entered = flow.move(name, lambda: engine.go_context(str(args.get("context", ""))))
                self._entered(name, control)
                control.change_context(entered)
                return ToolOutcome(response=f"Now in context '{entered}'. Follow its instructions.")
            # gather_info: the answer's tool call/result stays out of the LLM history (contract §7)
            self._history_ops.append(ReplacePair(self._tool_call_id, True))
            before = engine.step_name
            reply, update = flow.submit(args)
            control.set_global_data(update)
            if engine.step_name != before:
                control.change_step(engine.step_name)
            return ToolOutcome(response=reply)
        except NavigationError as exc:
            return ToolOutcome(response=str(exc))

    def _meta_for(self, fn: SwaigFunction) -> dict[str, Any]:
        return {**as_dict(fn.raw.get("meta_data")), **self.meta.get(fn.meta_scope, {})}

    async def _run_function(self, fn: SwaigFunction, raw: str, args: dict[str, Any], control: AiControl) -> ToolOutcome:
        self._scope = fn.meta_scope
        started = self.now_s()
        entry: dict[str, Any] = {"command_name": fn.name, "command_arg": raw, "epoch_time": int(started)}
        if fn.kind == "datamap":
            data = {
                "call_id": self.call.call_id,
                "ai_session_id": self.call.ai_session_id or self.call.call_id,
                "caller_id_name": self.call.caller_id_name,
                "caller_id_num": self.call.caller_id_num,
                "project_id": self.call.project_id,
                "space_id": self.call.space_id,
                "app_name": str(self.params.get("app_name") or "swml app"),
                "global_data": dict(control.global_data()),
                "meta_data": self._meta_for(fn),
                "prompt_vars": prompt_vars(
                    dict(control.global_data()),
                    direction=self.call.direction,
                    caller_id_name=self.call.caller_id_name,
                    caller_id_num=self.call.caller_id_num,
                ),
            }
            fn_obj = {**fn.raw, "meta_data": self._meta_for(fn)}
            reply = await run_datamap(fn_obj, args, data, self.http())
            entry.update(url="data_map", post_response=reply)
            self.swaig_log.append(entry)
            if isinstance(reply, dict) and "error" in reply and "response" not in reply:
                return ToolOutcome(response=_failure_text(fn.name, "its output was not valid"))
            return self._take_reply(fn, reply, control)
        if fn.kind != "webhook":
            log.warning("SWAIG function %s has no web_hook_url and no defaults.web_hook_url", fn.name)
            return ToolOutcome(response=_failure_text(fn.name, "no URL is configured for it"))
        body = swaig_request(
            fn.raw,
            raw,
            args,
            call=self.call,
            params=self.params,
            global_data=dict(control.global_data()),
            meta_data=self._meta_for(fn),
            call_log=self.call_log(),
            raw_call_log=self.raw_call_log(),
        )
        waiting = await self.waiting.start(self.record, fn, self.functions.fillers_for(fn.name, self._language()))
        try:
            result = await post_json(
                self.http(), fn.url, body, timeout_s=self.webhook_timeout_s, signing_key=self.signing_key
            )
        finally:
            for task in waiting:  # the wait_file stops when the function returns
                task.cancel()
        entry.update(url=fn.url.split("?")[0], post_data=body, post_response=result.data if result.ok else result.error)
        self.swaig_log.append(entry)
        if not result.ok:
            log.warning("SWAIG %s: %s", fn.name, result.error)
            return ToolOutcome(response=_failure_text(fn.name, result.error))
        return self._take_reply(fn, result.data, control)

    def _take_reply(self, fn: SwaigFunction, reply: Any, control: AiControl) -> ToolOutcome:
        if not isinstance(reply, dict):
            why = f"its reply was a {type(reply).__name__}, not an object"
            return ToolOutcome(response=_failure_text(fn.name, why))
        actions = reply.get("action", [])
        actions = actions if isinstance(actions, list) else [actions]
        report = apply_actions(actions, control, self.params, self, post_process=reply.get("post_process", False))
        log.debug(
            "SWAIG %s actions: applied %s, denied %s, ignored %s",
            fn.name,
            report.applied,
            report.denied,
            report.ignored,
        )
        response = reply.get("response")
        if isinstance(response, dict):  # {tool_result, tool_prompt}
            parts = [str(response.get("tool_result", "")), str(response.get("tool_prompt", ""))]
            response = "\n".join(p for p in parts if p)
        if response is None:
            response = f"Error: {reply['error']}" if "error" in reply else EMPTY_REPLY
        text = expand_prompt(str(response), prompt_vars(dict(control.global_data())))
        # replace_in_history: the model needs this result once (InfoGatherer's next question rides
        # on it); the session drops or replaces the pair after that first send. Read from the list
        # itself: a post_process reply defers its actions, not this.
        replacement = replacement_of(actions)
        if replacement is not None:
            self._history_ops.append(ReplacePair(self._tool_call_id, replacement))
        return ToolOutcome(response=text, actions=actions)

    # -- LocalState (what actions change on this side) ---------------------------------------
    def toggle(self, name: str, active: bool) -> bool:
        return self.functions.toggle(name, active)

    def meta_set(self, data: dict[str, Any]) -> None:
        self.meta.setdefault(self._scope, {}).update(data)

    def meta_unset(self, keys: list[str] | None) -> None:
        scope = self.meta.setdefault(self._scope, {})
        if keys is None:
            scope.clear()
        for key in keys or []:
            scope.pop(key, None)

    def step_changed(self, name: str) -> str | None:
        engine, flow = self.contexts, self.flow
        if engine is None or flow is None:
            return name
        try:
            entered = flow.move("next_step", lambda: engine.go_step(name, forced=True))
        except NavigationError as exc:
            log.warning("change_step action: %s", exc)
            return None
        if self._control is not None:
            self._entered("next_step", self._control)
        return entered

    def context_changed(self, name: str) -> str | None:
        engine, flow = self.contexts, self.flow
        if engine is None or flow is None:
            return name
        try:
            entered = flow.move("change_context", lambda: engine.go_context(name, forced=True))
        except NavigationError as exc:
            log.warning("change_context action: %s", exc)
            return None
        if self._control is not None:
            self._entered("change_context", self._control)
        return entered

    def _language(self) -> str:
        languages = self.ai.get("languages")
        first = languages[0] if isinstance(languages, list) and languages and isinstance(languages[0], dict) else {}
        return str(first.get("code") or "en-US")

    def _filler(self, fillers: Any) -> str | None:
        """One phrase of a `{lang: [phrases]}` table for the verb's first language, in rotation."""
        table = as_dict(fillers)
        code = self._language()
        for key in (code, code.split("-")[0], "default", *table):
            phrases = table.get(key)
            if isinstance(phrases, list) and phrases:
                self._filler_turn += 1
                return str(phrases[(self._filler_turn - 1) % len(phrases)])
        return None

    def _entered(self, kind: str, control: AiControl) -> None:
        """After a step/context move: the filler (the history ops are StepFlow's, already queued)."""
        assert self.contexts is not None
        context = self.contexts.context
        swaig = as_dict(self.ai.get("SWAIG"))
        filler = self._filler(context.get("enter_fillers")) if kind == "change_context" else None
        filler = filler or self._filler(as_dict(swaig.get("internal_fillers")).get(kind))
        if filler:
            control.say(filler)


class CallFacts(Protocol):
    """What SWAIG reads of the kernel's `Call` (which it may not import: DESIGN §2)."""

    @property
    def call_id(self) -> str: ...
    @property
    def from_uri(self) -> str: ...
    @property
    def info(self) -> dict[str, Any]: ...


def call_info_from(call: CallFacts, ai: dict[str, Any] | None = None) -> CallInfo:
    """A `CallInfo` from the kernel's Call: its id, caller URI and `info` (SWML call and vars)."""
    info = call.info
    from_uri = call.from_uri
    number = from_uri.split(":", 1)[-1].split("@")[0] if from_uri else ""
    return CallInfo(
        call_id=call.call_id,
        ai_session_id=str(info.get("ai_session_id") or call.call_id),
        caller_id_name=str(info.get("caller_id_name") or ""),
        caller_id_num=str(info.get("caller_id_num") or number),
        direction=str(info.get("direction") or "inbound"),
        project_id=str(info.get("project_id") or ""),
        space_id=str(info.get("space_id") or ""),
        call=dict(info.get("swml_call") or {}),
        vars=dict(info.get("swml_vars") or {}),
    )


def make_tool_runner(call: CallFacts, config: Any, ai: dict[str, Any], *, signing_key: str = "") -> SwaigToolRunner:
    """`ToolRunnerFactory`: (Call, AiSessionConfig, raw ai params) → a runner for this verb.

    The app binds `signing_key` ([swaig] signing_key) with functools.partial.
    """
    del config  # the runner reads the raw verb; the session's parsed config is not needed
    return SwaigToolRunner(ai, call_info_from(call, ai), signing_key=signing_key)
