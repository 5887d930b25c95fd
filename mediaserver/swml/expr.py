"""SWML expressions: `${…}` / `%{…}` templates and raw `when` clauses, evaluated as JavaScript.

Theory of operation: SWML's expression language is JavaScript (docs/swml-contract.md §2). Strings may
hold templates: a value that is exactly one template (`"${vars.count + 1}"`, schema SWMLVar)
takes the expression's typed value (number, object, bool); templates embedded in text
(`"say:Hello ${call.from}"`) are replaced by their string form (undefined and null as "",
objects and arrays as JSON). `cond.when`, `goto.when` and `switch.variable` are raw JavaScript
without the `${}` wrapper.

`expand(value, scope, path)` walks strings, lists and objects; `evaluate(code, scope, path)`
runs one expression; `truthy(code, scope, path)` applies JavaScript truthiness. The scope is a
plain JSON-able mapping: `call`, `vars`, `params`, `envs`; the keys of `vars` (which hold the
verb results: prompt_value, return_value, request_result, …) are also reachable bare. A bare
name that does not exist is `undefined`, not a ReferenceError, because documents test
variables that an earlier verb may not have set (`prompt_value == "1"` before any prompt).

The evaluator sits behind the small `Evaluator` protocol so the interpreter stays sans-I/O and
tests can count or fake evaluations. `JsEvaluator` embeds V8 through mini-racer: one isolate
per evaluator (per call), each evaluation under a time limit and the isolate under a hard
memory limit, so a document's `while(true){}` or a runaway allocation costs one error, not the
server. The scope crosses into V8 as JSON text (no Python objects are exposed to scripts), and
the value comes back as JSON text, so no V8 handles outlive an evaluation. Every failure
(syntax, runtime, timeout, memory, a value JSON cannot carry) raises `SwmlError` naming the
JSON path of the field that held the expression.
"""

from __future__ import annotations

import atexit
import json
import re
import threading
import weakref
from collections.abc import Mapping
from typing import Any, Protocol

from mediaserver.swml.errors import SwmlError

__all__ = [
    "DEFAULT_MAX_MEMORY_BYTES",
    "DEFAULT_TIMEOUT_MS",
    "Evaluator",
    "JsEvaluator",
    "expand",
    "has_template",
    "strip_template",
    "to_text",
    "truthy",
]

DEFAULT_TIMEOUT_MS = 100
DEFAULT_MAX_MEMORY_BYTES = 64 * 1024 * 1024
_WHOLE = re.compile(r"^[$%]\{(.*)\}$", re.DOTALL)

# The scope is a Proxy inside `with`: names found in the scope resolve there, names that are
# JavaScript globals (Math, JSON, String…) resolve as usual, and anything else is undefined
# instead of a ReferenceError. The value goes back wrapped in an object so that `undefined`
# survives JSON (a missing key) and is told apart from null.
_PRELUDE = """
(function () {
  // V8 does not check for termination inside a few C++ builtins, so a timeout cannot stop
  // `new Array(1e9).fill(0)`; refuse such sizes up front (no SWML value is that large).
  var cap = 1000000;
  var guard = function (proto, name, size) {
    var original = proto[name];
    proto[name] = function () {
      if (size(this, arguments) > cap) { throw new RangeError(name + ": result too large"); }
      return original.apply(this, arguments);
    };
  };
  guard(Array.prototype, "fill", function (self) { return self.length; });
  guard(Array.prototype, "join", function (self) { return self.length; });
  guard(String.prototype, "repeat", function (self, args) { return String(self).length * args[0]; });
  guard(String.prototype, "padStart", function (self, args) { return args[0]; });
  guard(String.prototype, "padEnd", function (self, args) { return args[0]; });
})();
var __swml_eval = function (__scope_json, __code) {
  var __scope = JSON.parse(__scope_json);
  var __proxy = new Proxy(__scope, {
    has: function (t, k) { return (k in t) || !(k in globalThis); },
    get: function (t, k) { return (k === Symbol.unscopables) ? undefined : t[k]; }
  });
  var __value = (new Function("__p", "with (__p) { return (" + __code + "\\n); }"))(__proxy);
  return JSON.stringify({v: __value});
};
"""


class Evaluator(Protocol):
    def evaluate(self, code: str, scope: Mapping[str, Any], path: str) -> Any:
        """Evaluate one JavaScript expression over `scope`; raise SwmlError(path, …) on failure."""
        ...


class JsEvaluator:
    """V8 (mini-racer) with a per-evaluation time limit and a per-isolate memory limit."""

    def __init__(self, timeout_ms: int = DEFAULT_TIMEOUT_MS, max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES) -> None:
        if timeout_ms <= 0:
            raise ValueError(f"timeout_ms must be > 0, got {timeout_ms}")
        self.timeout_ms = timeout_ms
        self.max_memory_bytes = max_memory_bytes
        self._ctx: Any = None
        self.evaluations = 0

    def _context(self) -> Any:
        # Built on first use: most documents have no expression, and an isolate costs ~8 ms.
        if self._ctx is None:
            from py_mini_racer import MiniRacer

            # Built on a thread with no running asyncio loop, so that mini-racer starts its own
            # loop thread: bound to the server's loop, it refuses synchronous evaluation with
            # a timeout, and an expression must not wait on the loop it blocks.
            made: list[Any] = []
            maker = threading.Thread(target=lambda: made.append(MiniRacer()), name="swml-v8")
            maker.start()
            maker.join()
            ctx = made[0]
            ctx.set_hard_memory_limit(self.max_memory_bytes)
            ctx.eval(_PRELUDE)
            self._ctx = ctx
            _LIVE.add(self)
        return self._ctx

    def evaluate(self, code: str, scope: Mapping[str, Any], path: str) -> Any:
        from py_mini_racer import JSEvalException, JSOOMException, JSParseException, JSTimeoutException

        if not code.strip():
            raise SwmlError(path, "empty expression")
        try:
            scope_json = json.dumps(scope, default=str)
        except (TypeError, ValueError) as exc:  # a circular structure in vars
            raise SwmlError(path, f"variables cannot be passed to the expression: {exc}") from None
        ctx = self._context()
        self.evaluations += 1
        try:
            out = ctx.call("__swml_eval", scope_json, code, timeout_sec=self.timeout_ms / 1000)
        except JSTimeoutException:
            self._ctx = None  # V8 may still be unwinding; never reuse an isolate that timed out
            raise SwmlError(path, f"expression {code!r} ran longer than {self.timeout_ms} ms") from None
        except JSOOMException:
            self._ctx = None  # the isolate is spent; the next evaluation gets a fresh one
            raise SwmlError(path, f"expression {code!r} exceeded the memory limit") from None
        except (JSParseException, JSEvalException) as exc:
            raise SwmlError(path, f"expression {code!r}: {_js_message(str(exc))}") from None
        if ctx.was_hard_memory_limit_reached():
            self._ctx = None
            raise SwmlError(path, f"expression {code!r} exceeded the memory limit")
        if not isinstance(out, str):  # JSON.stringify of a function or symbol gives undefined
            return None
        return json.loads(out).get("v")

    def close(self) -> None:
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None


# Isolates still open at exit (an interpreter nobody closed, as in tests) are closed first:
# mini-racer can otherwise stall interpreter shutdown while it tears V8 down.
_LIVE: weakref.WeakSet[JsEvaluator] = weakref.WeakSet()


@atexit.register
def _close_live() -> None:
    for evaluator in list(_LIVE):
        evaluator.close()


def _js_message(text: str) -> str:
    # mini-racer reports "<anonymous>:1: SyntaxError: …" then the source and a caret; the
    # line naming the error class is the one a document author needs.
    for line in text.splitlines():
        for kind in ("SyntaxError", "ReferenceError", "TypeError", "RangeError", "Error"):
            if f"{kind}:" in line:
                return line[line.index(f"{kind}:") :].strip()
    return " ".join(text.split())[:200]


# ---- templates -------------------------------------------------------------------------------


def has_template(value: object) -> bool:
    return isinstance(value, str) and ("${" in value or "%{" in value)


def strip_template(code: str) -> str:
    """`${x}` -> `x`; raw JavaScript is returned unchanged (when clauses may use either)."""
    match = _WHOLE.match(code.strip())
    return match.group(1) if match and _template_end(code.strip(), 2) == len(code.strip()) else code


def expand(value: Any, scope: Mapping[str, Any], path: str, evaluator: Evaluator) -> Any:
    """Expand every template in `value` (recursively through lists and objects)."""
    if isinstance(value, str):
        return _expand_string(value, scope, path, evaluator)
    if isinstance(value, list):
        return [expand(item, scope, f"{path}[{index}]", evaluator) for index, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: expand(item, scope, f"{path}.{key}", evaluator) for key, item in value.items()}
    return value


def truthy(code: str, scope: Mapping[str, Any], path: str, evaluator: Evaluator) -> bool:
    value = evaluator.evaluate(strip_template(code), scope, path)
    # JavaScript truthiness; NaN came back through JSON as null, which is falsy too.
    return value not in (None, False, 0, "") if not isinstance(value, list | dict) else True


def to_text(value: Any) -> str:
    """How an embedded template's value reads inside a string."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # JavaScript prints 3, not 3.0
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _expand_string(text: str, scope: Mapping[str, Any], path: str, evaluator: Evaluator) -> Any:
    if not has_template(text):
        return text
    pieces: list[str] = []
    index = 0
    whole: Any = None
    count = 0
    while index < len(text):
        start = _next_opening(text, index)
        if start < 0:
            pieces.append(text[index:])
            break
        end = _template_end(text, start + 2)
        if end < 0:
            raise SwmlError(path, f"unterminated expression starting at {text[start : start + 30]!r}")
        pieces.append(text[index:start])
        whole = evaluator.evaluate(text[start + 2 : end - 1], scope, path)
        count += 1
        pieces.append(to_text(whole))
        index = end
    if count == 1 and len(pieces) == 2 and pieces[0] == "" and _template_end(text, 2) == len(text):
        return whole  # the whole value is one template: keep its type
    return "".join(pieces)


_OPENING = re.compile(r"[$%]\{")


def _next_opening(text: str, index: int) -> int:
    # One scan from `index` for either opening: two str.find calls would each run to the end of
    # the text when only the other kind occurs, quadratic in the number of templates.
    match = _OPENING.search(text, index)
    return match.start() if match else -1


def _template_end(text: str, index: int) -> int:
    """Index just past the `}` that closes a template whose body starts at `index`, or -1.

    Braces inside the JavaScript (object literals, nested templates) and inside string
    literals are skipped, so `${ {a: "}"}.a }` is one template.
    """
    depth = 1
    quote: str | None = None
    while index < len(text):
        char = text[index]
        if quote is not None:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = None
        elif char in "\"'`":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return -1
