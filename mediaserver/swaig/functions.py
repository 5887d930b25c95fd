"""The SWAIG block as a set of callable functions: which the LLM may see now, and how each runs.

Theory of operation: `FunctionSet.from_swaig(swaig)` reads `SWAIG.functions` (plus those added
later from `includes`), `defaults.web_hook_url` and `native_functions` (contract §3.2, §8).
Each user function becomes a `SwaigFunction` with its dispatch kind: `datamap` when it has a
`data_map`, else `webhook` with its own `web_hook_url` over the defaults' (the SDK renders a
per-function URL carrying `?__token=`), or `missing_url` when neither exists (the call is
answered with a spoken recovery, not a crash). Hooks (`startup_hook`, `hangup_hook`,
`summarize_conversation`, `check_for_input`) are kept but never offered to the LLM. Legacy `purpose`/`argument`
are read as `description`/`parameters`.

Basic auth: a webhook URL's own `user:pass@` wins; a URL without userinfo gets the function's
`web_hook_auth_user`/`web_hook_auth_password` (the SDK renders them as extra SWAIG fields),
else `SWAIG.defaults.web_hook_auth_user`/`_password` (`_pass` is read too), written into the
URL so that the client turns it into an `Authorization: Basic` header like any userinfo.

While a webhook runs (gateway.py): `fillers_for` gives the function's own `fillers` phrases
for the language; `wait_file`/`wait_file_loops` (`wait_for`) the audio to play and how often
(0 = until the function returns); `wait_for_fillers` makes the dispatch wait for the filler.

`definitions(allowed)` returns the OpenAI `tools` entries of the active functions, restricted to
the current step's whitelist when one applies; `toggle(name, active)` is what the
toggle_functions action changes. Native functions are offered only when listed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from mediaserver.swaig.natives import NATIVE_DEFINITIONS
from mediaserver.swaig.templates import as_dict

__all__ = ["HOOKS", "RESERVED", "FunctionSet", "SwaigFunction", "tool_definition"]

log = logging.getLogger(__name__)

# Kept but never offered to the LLM; check_for_input is polled (input_poll.py)
HOOKS = frozenset({"startup_hook", "hangup_hook", "summarize_conversation", "check_for_input"})
# Names the engine owns (SDK semantic_gate.RESERVED_FUNCTION_NAMES)
RESERVED = HOOKS | {
    "next_step",
    "change_context",
    "gather_submit",
    "pause_conversation",
    "get_visual_input",
    "get_ideal_strategy",
    "hangup",
    "sidecar_skip",
    "check_for_input",
    "end_call",
    "check_time",
    "wait_seconds",
    "wait_for_user",
    "adjust_response_latency",
}
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


def _truthy(value: Any, default: bool = True) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "off", "")
    return bool(value)


def tool_definition(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    schema = parameters if isinstance(parameters, dict) and parameters else dict(EMPTY_PARAMETERS)
    if "type" not in schema:
        schema = {"type": "object", **schema}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": schema}}


@dataclass
class SwaigFunction:
    name: str
    description: str
    parameters: dict[str, Any]
    raw: dict[str, Any]  # the function object as the document has it
    kind: str  # "datamap" | "webhook" | "missing_url" | "native"
    url: str = ""
    active: bool = True
    fillers: dict[str, list[str]] = field(default_factory=dict)
    wait_file: str = ""
    wait_file_loops: int = 0  # 0: loop until the function returns
    wait_for_fillers: bool = False

    @property
    def meta_scope(self) -> str:
        """The meta_data scope: meta_data_token if given, else the URL, else the name."""
        token = self.raw.get("meta_data_token")
        return str(token) if token else (self.url.split("?")[0] or self.name)


def _loops(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _auth(raw: dict[str, Any]) -> tuple[str, str] | None:
    user = raw.get("web_hook_auth_user")
    password = raw.get("web_hook_auth_password", raw.get("web_hook_auth_pass"))
    if isinstance(user, str) and user:
        return user, str(password) if password is not None else ""
    return None


def with_basic_auth(url: str, auth: tuple[str, str] | None) -> str:
    """`url` with `user:pass@` added when it has no userinfo yet (percent-encoded)."""
    if not auth or not url:
        return url
    parts = urlsplit(url)
    if parts.username is not None or not parts.netloc:
        return url
    userinfo = f"{quote(auth[0], safe='')}:{quote(auth[1], safe='')}"
    return urlunsplit((parts.scheme, f"{userinfo}@{parts.netloc}", parts.path, parts.query, parts.fragment))


class FunctionSet:
    def __init__(
        self, default_url: str = "", natives: list[str] | None = None, default_auth: tuple[str, str] | None = None
    ) -> None:
        self.default_url = default_url
        self.default_auth = default_auth
        self.functions: dict[str, SwaigFunction] = {}
        self.hooks: dict[str, SwaigFunction] = {}
        self.natives: list[str] = []
        self.warnings: list[str] = []
        for native in natives or []:
            if native in NATIVE_DEFINITIONS:
                self.natives.append(native)
            else:
                self.warnings.append(f"SWAIG.native_functions: {native!r} is not a native function; ignored")

    @classmethod
    def from_swaig(cls, swaig: Any) -> FunctionSet:
        swaig = swaig if isinstance(swaig, dict) else {}
        defaults = as_dict(swaig.get("defaults"))
        natives = swaig.get("native_functions") if isinstance(swaig.get("native_functions"), list) else []
        fs = cls(str(defaults.get("web_hook_url") or ""), [str(n) for n in natives], _auth(defaults))
        functions = swaig.get("functions") if isinstance(swaig.get("functions"), list) else []
        for index, raw in enumerate(functions):
            fs.add(raw, f"SWAIG.functions[{index}]")
        return fs

    def add(self, raw: Any, path: str) -> None:
        """Add one function object; a bad one is named in `warnings` and skipped."""
        if not isinstance(raw, dict) or not isinstance(raw.get("function"), str) or not raw["function"]:
            self.warnings.append(f"{path}: a function needs a `function` name; skipped")
            return
        name = raw["function"]
        parameters = raw.get("parameters", raw.get("argument", EMPTY_PARAMETERS))
        if not isinstance(parameters, dict):
            self.warnings.append(f"{path}.parameters: not an object; using no parameters")
            parameters = dict(EMPTY_PARAMETERS)
        url = with_basic_auth(str(raw.get("web_hook_url") or self.default_url), _auth(raw) or self.default_auth)
        kind = "datamap" if isinstance(raw.get("data_map"), dict) else ("webhook" if url else "missing_url")
        fillers = as_dict(raw.get("fillers"))
        fn = SwaigFunction(
            name=name,
            description=str(raw.get("description", raw.get("purpose", ""))),
            parameters=parameters,
            raw=raw,
            kind=kind,
            url=url if kind == "webhook" else "",
            active=_truthy(raw.get("active"), True),
            fillers={str(k): [str(p) for p in v] for k, v in fillers.items() if isinstance(v, list)},
            wait_file=raw["wait_file"] if isinstance(raw.get("wait_file"), str) else "",
            wait_file_loops=_loops(raw.get("wait_file_loops")),
            wait_for_fillers=_truthy(raw.get("wait_for_fillers"), False),
        )
        if name in HOOKS:
            self.hooks[name] = fn
            return
        if name in RESERVED:
            self.warnings.append(f"{path}.function: {name!r} is reserved by the engine; skipped")
            return
        if name in self.functions:
            self.warnings.append(f"{path}.function: {name!r} is defined twice; the later one wins")
        self.functions[name] = fn

    def toggle(self, name: str, active: bool) -> bool:
        fn = self.functions.get(name)
        if fn is None:
            return False
        fn.active = active
        return True

    def active_names(self, allowed: set[str] | None = None) -> list[str]:
        """User functions the LLM may call now: active, and in the step's whitelist when one applies."""
        return [n for n, f in self.functions.items() if f.active and (allowed is None or n in allowed)]

    def definitions(self, allowed: set[str] | None = None) -> list[dict[str, Any]]:
        tools = [
            tool_definition(f.name, f.description, f.parameters)
            for f in self.functions.values()
            if f.active and (allowed is None or f.name in allowed)
        ]
        tools += [NATIVE_DEFINITIONS[name] for name in self.natives]
        return tools

    def fillers_for(self, name: str, language: str) -> list[str]:
        """The function's own `fillers` for `language` (its base code, then `default`).

        `skip_fillers` does not silence these: it drops only the language-level fillers.
        """
        fn = self.functions.get(name)
        if fn is None:
            return []
        for key in (language, language.split("-")[0], "default"):
            if fn.fillers.get(key):
                return fn.fillers[key]
        return []
