"""Admission control: how many calls, and how many AI conversations, this process takes on.

Theory of operation: a call that runs the `ai` verb costs far more than a media-only call (ASR,
LLM, TTS on two shared engine threads), so the process has two limits: `ai_capacity` AI
conversations and `max_calls` calls in all. Beyond either, a new call is refused cleanly (SIP 503
with Retry-After, HTTP 503 with Retry-After for a browser) instead of being taken on and making
every live call slower; a proxy or trunk then sends it to another instance or tries later.

The server knows a call is an AI call only when its SWML reaches `ai`, but a route's document is
loaded before the call is answered, so a front end asks `Admission.admit` with that document:

- a document with an `ai` (or `amazon_bedrock`) verb anywhere, nested ones and other sections
  included, takes an AI slot at admission: a reservation, held until its `ai` verb starts (the
  reservation becomes the session) or the call ends. Reserving at admission, rather than when the
  agent starts a few seconds later, is what keeps a burst of INVITEs from all passing the check
  while the slots are still free. A route that only may reach `ai` (an IVR branch) is counted as
  an AI call: the conservative choice, the one that keeps the live calls' quality.
- a call that reaches `ai` without a reservation (its SWML came from a URL, a transfer or a SWAIG
  action) asks `start_ai` when the verb starts; over capacity, `AdmittedAiRunner` continues the
  call in the configured overflow document ("all our agents are busy", then hangup) or, with
  none configured, hangs up with cause USER_BUSY. Either way the call logs `ai_over_capacity`.

An AI slot is given back when the `ai` verb ends (the call may go on with other verbs) or the
call ends (`Kernel` calls `release`). Everything here runs on the event loop, one call at a time:
the checks and the counts need no locks. The counts are read by `/health` and `/metrics`.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mediaserver.errors import HangupCause
from mediaserver.events import CallEvent, event
from mediaserver.kernel.services import AiRunner, SwmlRunner
from mediaserver.swml.document import Document, all_verbs, load_document
from mediaserver.swml.effects import Ai, AiFinished

if TYPE_CHECKING:
    from mediaserver.kernel.call import Call

log = logging.getLogger(__name__)

AI_VERBS = frozenset({"ai", "amazon_bedrock"})  # the verbs that start a voice agent (swml/effects.Ai)
# Issue 16's goal for the 2-core reference box ("AI conversations on the whole box: at least 12
# concurrent"); to be replaced by the figure the AI capacity benchmark measures.
DEFAULT_AI_CAPACITY = 12
# The media plane's target is 300 calls per core, and one process is one event loop: one core.
DEFAULT_MAX_CALLS = 300
DEFAULT_RETRY_AFTER_S = 30  # AI calls last minutes: asking sooner would only bring the caller back to a 503


class RefusalReason(enum.StrEnum):
    """Why a new call was refused (the `reason` label of `mediaserver_calls_refused_total`)."""

    AI_CAPACITY = "ai_capacity"  # every AI slot is taken
    CALL_LIMIT = "call_limit"  # max_calls calls are live
    RTP_PORTS = "rtp_ports"  # no RTP port left in [rtp] port_min..port_max (the SIP front end)


@dataclass(frozen=True)
class AdmissionLimits:
    """`[admission]` as values (app.py builds it); 0 = no limit."""

    ai_capacity: int = DEFAULT_AI_CAPACITY
    max_calls: int = DEFAULT_MAX_CALLS
    retry_after_s: int = DEFAULT_RETRY_AFTER_S


@dataclass(frozen=True)
class Refusal:
    """A call the server will not take: the front end answers 503 with `retry_after_s`."""

    reason: RefusalReason
    retry_after_s: int
    detail: str  # for logs and the HTTP body: "12 of 12 AI sessions in use"

    @property
    def headers(self) -> list[tuple[str, str]]:
        """What the 503 carries (SIP and HTTP alike)."""
        return [("Retry-After", str(self.retry_after_s))]


@event
class AiOverCapacity(CallEvent):
    """The call reached `ai` with every AI slot taken: it got the overflow document, or a hangup."""

    EVENT = "ai_over_capacity"
    LEVEL = logging.WARNING
    ai_sessions: int
    ai_capacity: int
    overflow: bool  # True: the call goes on in the overflow document; False: hung up


def uses_ai(document: Document) -> bool:
    """Whether `document` can start a voice agent: an ai verb in any section, at any depth."""
    return any(verb.name in AI_VERBS for verb in all_verbs(document))


class Admission:
    """The live calls and AI slots of this process, and the refusals so far (see the module doc)."""

    def __init__(self, limits: AdmissionLimits | None = None) -> None:
        self.limits = limits or AdmissionLimits()
        self._calls: set[str] = set()  # admitted and not yet released
        self._reserved: set[str] = set()  # admitted to a route with `ai`; the verb has not started
        self._ai: set[str] = set()  # running the `ai` verb now
        # Every reason from the start, so each series exists (at 0) before the first refusal.
        self.refused: Counter[str] = Counter({reason.value: 0 for reason in RefusalReason})

    # -- counts ------------------------------------------------------------------------------
    @property
    def ai_sessions(self) -> int:
        """AI conversations running now (`ai` verbs in progress)."""
        return len(self._ai)

    @property
    def ai_reserved(self) -> int:
        """Admitted AI calls whose `ai` verb has not started yet (answering, a greeting first...)."""
        return len(self._reserved)

    @property
    def calls(self) -> int:
        return len(self._calls)

    def ai_headroom(self) -> int | None:
        """AI calls that would still be admitted now; None = no limit."""
        capacity = self.limits.ai_capacity
        return None if not capacity else max(0, capacity - self.ai_sessions - self.ai_reserved)

    def call_headroom(self) -> int | None:
        """Calls of any kind that would still be admitted now; None = no limit."""
        limit = self.limits.max_calls
        return None if not limit else max(0, limit - self.calls)

    # -- the front ends ----------------------------------------------------------------------
    def admit(self, call_id: str, document: Document, *, front_end: str) -> Refusal | None:
        """Take the call (None) or say why not. Admitted, it holds a call slot, and an AI slot
        when `document` has an ai verb, until `release` (the call's end, or its failed setup)."""
        if self.call_headroom() == 0:
            return self._refuse(
                call_id, RefusalReason.CALL_LIMIT, f"{self.calls} of {self.limits.max_calls} calls live", front_end
            )
        ai = uses_ai(document)
        if ai and self.ai_headroom() == 0:
            return self._refuse(call_id, RefusalReason.AI_CAPACITY, self._ai_detail(), front_end)
        self._calls.add(call_id)
        if ai:
            self._reserved.add(call_id)
        return None

    def note_refusal(self, call_id: str, reason: RefusalReason, detail: str, *, front_end: str) -> Refusal:
        """A refusal a front end decided itself (no RTP port): counted and logged like ours."""
        return self._refuse(call_id, reason, detail, front_end)

    def release(self, call_id: str) -> None:
        """The call ended (or its setup failed after `admit`): its slots are free again."""
        self._calls.discard(call_id)
        self._reserved.discard(call_id)
        self._ai.discard(call_id)

    # -- the ai verb -------------------------------------------------------------------------
    def start_ai(self, call_id: str) -> bool:
        """The call's `ai` verb starts: True if it may run (its reservation, or a free slot)."""
        if call_id in self._reserved:
            self._reserved.discard(call_id)
        elif self.ai_headroom() == 0:
            self._refuse(call_id, RefusalReason.AI_CAPACITY, self._ai_detail(), "ai verb")
            return False
        self._ai.add(call_id)
        return True

    def end_ai(self, call_id: str) -> None:
        self._ai.discard(call_id)

    # -- views -------------------------------------------------------------------------------
    def snapshot(self, *, draining: bool = False) -> dict[str, Any]:
        """What `/health` shows: the state, the counts, the limits, the headroom, the refusals.

        `state` is "open", "ai_full" (media-only calls are still taken), "full" or "draining"."""
        ai_room, call_room = self.ai_headroom(), self.call_headroom()
        state = "open"
        if draining:
            state = "draining"
        elif call_room == 0:
            state = "full"
        elif ai_room == 0:
            state = "ai_full"
        return {
            "state": state,
            "ai_sessions": self.ai_sessions,
            "ai_reserved": self.ai_reserved,
            "ai_capacity": self.limits.ai_capacity,  # 0 = no limit
            "ai_headroom": ai_room,  # None (null) = no limit
            "calls": self.calls,
            "max_calls": self.limits.max_calls,
            "call_headroom": call_room,
            "retry_after_s": self.limits.retry_after_s,
            "refused": dict(self.refused),
        }

    def _ai_detail(self) -> str:
        in_use = self.ai_sessions + self.ai_reserved
        return f"{in_use} of {self.limits.ai_capacity} AI sessions in use"

    def _refuse(self, call_id: str, reason: RefusalReason, detail: str, front_end: str) -> Refusal:
        self.refused[reason.value] += 1
        log.warning(
            "call refused",
            extra={"call_id": call_id, "reason": reason.value, "detail": detail, "front_end": front_end},
        )
        return Refusal(reason, self.limits.retry_after_s, detail)


def load_overflow(target: Path | str) -> dict[str, Any]:
    """The overflow document's data, checked now (a bad one raises SwmlError or OSError at start).

    `target` is a file (JSON or YAML) or an http(s) URL, whose SWML is fetched per call like a
    URL route's."""
    if isinstance(target, str):
        return {"sections": {"main": [{"transfer": {"dest": target}}]}}
    text = target.read_text()
    load_document(text, source=str(target))  # validates, with the JSON path of any bad field
    data = yaml.safe_load(text)  # JSON is YAML too; what the SWAIG-style transfer takes
    return dict(data)


class AdmittedAiRunner:
    """The kernel's `AiRunner` behind admission control: counts the AI sessions, and beyond the
    capacity gives the call the overflow document (or a hangup) instead of an agent."""

    def __init__(
        self,
        runner: AiRunner,
        admission: Admission,
        scripts: SwmlRunner,
        overflow: Mapping[str, Any] | None = None,
    ) -> None:
        self.runner = runner
        self.admission = admission
        self.scripts = scripts
        self.overflow = overflow

    async def __call__(self, call: Call, effect: Ai, variables: Mapping[str, Any]) -> AiFinished:
        admission = self.admission
        if admission.start_ai(call.call_id):
            try:
                return await self.runner(call, effect, variables)
            finally:
                admission.end_ai(call.call_id)
        # Over capacity: the script continues in the overflow document once this verb returns
        # (kernel/inline.py), so the caller hears why instead of dead air.
        overflow = self.overflow is not None and self.scripts.transfer(call, self.overflow, source="admission") == ""
        call.events.emit(
            AiOverCapacity(
                ai_sessions=admission.ai_sessions, ai_capacity=admission.limits.ai_capacity, overflow=overflow
            )
        )
        if not overflow:
            call.hangup(HangupCause.USER_BUSY, reason="AI capacity full")
        return AiFinished(result="failed")
