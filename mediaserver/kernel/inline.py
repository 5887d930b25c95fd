"""SWML that an agent hands the call's script mid-call: SWAIG `SWML` and `transfer` actions.

Theory of operation: an agent (the `ai` verb's session, an `ai_sidecar`) runs while the call's
SWML executor is busy with one effect (the `ai` verb itself, or whatever the script does beside
a sidecar). The agent never sees that executor (the kernel does not know the agents, and the
agents reach the kernel only through its protocols), so each executor attaches itself here, by
call id, for as long as it runs its script (`ScriptRegistry.attach`/`detach`), and the agents
hold the registry as a `SwmlRunner` (kernel/services.py; `KernelServices.scripts`, wired into
the AI runner and the sidecar by the app). Two requests:

- `transfer(call, document)`: the script leaves what it is doing and continues in `document`
  (from its main, the stack dropped, the variables kept: they belong to the call). The
  executor applies it when the current effect returns: the `ai` verb's session ends itself
  (its post-prompt summary is still delivered), any other effect is cancelled. Synchronous: it
  only validates the document and leaves the request, so an agent can refuse a bad document
  and go on instead of ending.
- `run_inline(call, document)`: the document's main runs now, on the live call, with the
  executor's own verb handlers and the call's variables (one scope: what it sets, the AI's
  script sees afterwards), then control returns to the agent: `Finished` is the end of the
  inline run, not a hangup; `hangup` hangs up; `transfer` inside it continues the inline run
  there; a nested `ai` verb is refused (`ai_result = failed`, logged). Background jobs it starts
  (`record_call`, `tap`) belong to the call's script and outlive the inline run. A run that
  fails (an expression error, a fetch that fails) is logged with its JSON path and answered
  `ran=False`: the agent goes on, the call is not hung up.

Refusals are never silent: a call without a script attached, or a document that does not
validate, emits `verb_unsupported` / `swml_error` on the call and answers with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mediaserver.events import CallEvent, SwmlError, VerbUnsupported, event
from mediaserver.swml.document import Document, document_from_data
from mediaserver.swml.errors import SwmlError as SwmlDocumentError

if TYPE_CHECKING:
    from mediaserver.kernel.call import Call

__all__ = ["CallScript", "InlineResult", "ScriptRegistry", "SwmlInlineFinished", "SwmlTransferRequested"]


@dataclass(frozen=True)
class InlineResult:
    """What an inline document left: whether it ran, the call's variables after it, and
    `ai_response` (the SDK helpers' `set: {ai_response}`: what the agent should say next)."""

    ran: bool
    error: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    ai_response: str | None = None
    hung_up: bool = False


class CallScript(Protocol):
    """What an executor offers while it runs a call's script (SwmlExecutor implements it)."""

    def request_transfer(self, document: Document) -> None: ...
    async def run_inline(self, call: Call, document: Document) -> InlineResult: ...


@event
class SwmlTransferRequested(CallEvent):
    EVENT = "swml_transfer_requested"
    source: str  # who asked: "ai", "sidecar"
    verbs: int  # verbs in the new document's main


@event
class SwmlInlineFinished(CallEvent):
    EVENT = "swml_inline_finished"
    source: str
    ran: bool
    error: str = ""


class ScriptRegistry:
    """The call scripts running now, by call id; the agents' `SwmlRunner` (see the module doc)."""

    def __init__(self) -> None:
        self._scripts: dict[str, CallScript] = {}

    def attach(self, call_id: str, script: CallScript) -> None:
        self._scripts[call_id] = script

    def detach(self, call_id: str, script: CallScript) -> None:
        if self._scripts.get(call_id) is script:
            del self._scripts[call_id]

    def transfer(self, call: Call, document: Mapping[str, Any], *, source: str = "ai") -> str:
        """Leave the request for the script to continue in `document`; "" or the refusal's reason."""
        script, parsed, error = self._prepare(call, document, "transfer")
        if script is None or parsed is None:
            return error
        call.events.emit(SwmlTransferRequested(source=source, verbs=len(parsed.sections["main"])))
        script.request_transfer(parsed)
        return ""

    async def run_inline(self, call: Call, document: Mapping[str, Any], *, source: str = "ai") -> InlineResult:
        """Run `document` on the live call now and come back (see the module doc)."""
        script, parsed, error = self._prepare(call, document, "SWML")
        if script is None or parsed is None:
            result = InlineResult(ran=False, error=error)
        else:
            result = await script.run_inline(call, parsed)
        call.events.emit(SwmlInlineFinished(source=source, ran=result.ran, error=result.error))
        return result

    def _prepare(
        self, call: Call, document: Mapping[str, Any], verb: str
    ) -> tuple[CallScript | None, Document | None, str]:
        script = self._scripts.get(call.call_id)
        if script is None or call.is_over:
            reason = "the call has ended" if call.is_over else "no SWML script runs this call"
            call.events.emit(VerbUnsupported(verb=verb, reason=reason))
            return None, None, reason
        try:
            parsed = document_from_data(dict(document), source=f"SWAIG {verb} action")
        except SwmlDocumentError as exc:
            call.events.emit(SwmlError(path=exc.path, error=exc.message))
            return None, None, str(exc)
        return script, parsed, ""
