"""What a newcomer sees when the `ai` verb's language model cannot be reached.

Theory of operation: a reply's LLM failure is mapped to its recovery kind by `failure_kind`
(reply.py). A connection that never reached a server (refused, unknown host, no route: the
errors a missing or misconfigured `[llm] base_url` gives, never a stream broken mid-reply) is
`llm_unreachable`; the runner gives every session's recovery phrases `UNREACHABLE_PHRASE` for
it, one sentence saying that the language model is not reachable. The first such failure of
the process also logs one WARNING naming the `[llm]` settings that were tried and the three
ways to point them at a model (Ollama, OpenAI, any OpenAI-compatible server); later ones log
only their call's `ai_failure` event.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading

from mediaserver.pipeline.llm import LlmError, LlmSettings

__all__ = ["UNREACHABLE", "UNREACHABLE_PHRASE", "failure_kind", "guidance", "unreachable"]

log = logging.getLogger(__name__)

UNREACHABLE = "llm_unreachable"
UNREACHABLE_PHRASE = "Sorry, the language model for this line is not reachable right now."

# OSError numbers that only a connection attempt gives: nothing answered at that address.
_CONNECT_ERRNOS = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL})

_warned = threading.Event()


def unreachable(exc: BaseException) -> bool:
    """True for an LLM connection error whose cause is a connection never made."""
    if not isinstance(exc, LlmError) or exc.kind != "connection":
        return False
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:  # the engine raises `from None`: the context is kept
        seen.add(id(cause))
        if isinstance(cause, socket.gaierror | ConnectionRefusedError):
            return True
        if isinstance(cause, OSError) and cause.errno in _CONNECT_ERRNOS:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def failure_kind(exc: LlmError, settings: object) -> str:
    """The recovery kind of a reply's LLM error; warns once per process when none is reachable."""
    if exc.kind == "timeout":
        return "llm_timeout"
    if not unreachable(exc):
        return "llm_error"
    if not _warned.is_set():
        _warned.set()
        model = settings.model if isinstance(settings, LlmSettings) else "?"
        log.warning(guidance(str(exc), model))
    return UNREACHABLE


def guidance(error: str, model: str) -> str:
    """The WARNING text: what was tried, what a call hears, the three ways to fix it."""
    return (
        f"the ai verb's language model is not reachable: {error}. Tried: [llm] base_url (in that error), "
        f'model = "{model}" ([llm] model, or the document\'s ai_model), the key from the variable named by '
        "[llm] api_key_env (local servers need none). "
        f'Calls to an ai document hear "{UNREACHABLE_PHRASE}" until it is reachable. '
        "Point [llm] in the --config file (or MS_LLM_BASE_URL and MS_LLM_MODEL) at one of: "
        "(1) Ollama: `docker compose --profile ollama up` or a local `ollama serve`, then `ollama pull "
        'qwen2.5:1.5b`; base_url = "http://127.0.0.1:11434/v1", model = "qwen2.5:1.5b"; '
        '(2) OpenAI: base_url = "https://api.openai.com/v1", model = "gpt-4o-mini", '
        'api_key_env = "OPENAI_API_KEY" with your key in that variable; '
        "(3) any OpenAI-compatible server (vLLM, llama.cpp, LM Studio...): base_url = its /v1 URL, "
        "model = a model it serves, api_key_env = the variable that holds its key. "
        "README.md, 'Quick start: the AI agent', has the steps."
    )
