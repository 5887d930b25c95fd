"""What every fuzz target shares: the example budget, the seeds, and the mutation strategies.

Budget: each target declares its own example count (sized so the whole of `tests/fuzz` runs in
about a minute on a small CI machine); `MS_FUZZ_EXAMPLES=N` gives every target N examples for
a long local run, `MS_FUZZ_DEADLINE_MS` changes the per-example bound (500 ms: generous for
parsers that take microseconds, tight enough to catch a quadratic regex on 64 KiB input; an
example over it is run again and fails only if it is slow again).

Mutations (`mutated_bytes`, with line edits for SIP/SDP/YAML, and `mutated_json`) start from real
messages and apply 1-6 edits: byte flips, truncation, cuts, duplication, line (header) shuffles and
duplicates, huge values (64 KiB), unicode that `str.isdigit()` and friends misjudge, and the
separators each grammar cares about.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
PROFILE = "ms-fuzz"
HUGE = 64 * 1024  # a header value as long as a UDP datagram allows
DATAGRAM = 65535  # the most a UDP datagram (or one frame of our TCP framer) holds

# No hypothesis deadline: on a shared CI machine it fails as "unreliable timings" whenever one
# run is slowed by a neighbour. `budget` checks the bound itself and fails only when the input is
# slow again on a second run: a hang or a quadratic regex reproduces, a busy CPU does not.
settings.register_profile(
    PROFILE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
DEADLINE_S = int(os.environ.get("MS_FUZZ_DEADLINE_MS", "500")) / 1000


def budget(examples: int, *, deadline_factor: float = 1) -> Callable[[Any], Any]:
    """Apply to a `@given` test: its own example count (MS_FUZZ_EXAMPLES overrides every target's)
    and the time bound of one example, DEADLINE_S (500 ms) times `deadline_factor`, which widens
    it for a parser that is pure Python over 128 KiB inputs (PyYAML scans some 3 µs a byte).
    """
    override = os.environ.get("MS_FUZZ_EXAMPLES")
    limit = DEADLINE_S * deadline_factor

    def apply(test: Any) -> Any:
        inner = test.hypothesis.inner_test

        @functools.wraps(inner)
        def bounded(*args: Any, **kwargs: Any) -> None:
            started = time.perf_counter()
            inner(*args, **kwargs)
            first = time.perf_counter() - started
            if first > limit:
                started = time.perf_counter()
                inner(*args, **kwargs)
                again = time.perf_counter() - started
                assert again <= limit, f"one example took {first:.3f} s, then {again:.3f} s (bound {limit:.3f} s)"

        test.hypothesis.inner_test = bounded
        return settings(settings.get_profile(PROFILE), max_examples=int(override) if override else examples)(test)

    return apply


# ---- seeds ---------------------------------------------------------------------------------


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def load_torture(path: Path) -> bytes:
    """An RFC 4475 fixture with CRLF line ends and `Content-Length: auto` resolved."""
    raw = _crlf(path.read_bytes())
    head, _, body = raw.partition(b"\r\n\r\n")
    length = str(len(body)).encode()
    head = re.sub(rb"(?im)^(content-length|l)(\s*:\s*)auto(?=\r?$)", lambda m: m[1] + m[2] + length, head)
    return head + b"\r\n\r\n" + body


SIP_SEEDS: list[bytes] = [load_torture(p) for p in sorted((FIXTURES / "sip" / "rfc4475").glob("*.sip"))]
SIP_SEEDS += [load_torture(p) for p in sorted((ROOT / "tests" / "unit" / "sip" / "fixtures").glob("*.sip"))]
SDP_SEEDS: list[bytes] = [
    _crlf(p.read_bytes()) for p in sorted((ROOT / "tests" / "unit" / "sip" / "fixtures").glob("*.sdp"))
]


def _swml_seeds() -> list[Any]:
    docs: list[Any] = [json.loads(p.read_text()) for p in sorted((FIXTURES / "swaig").glob("*.swml.json"))]
    docs += [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "config" / "swml").glob("*.yaml"))]
    return docs


SWML_SEEDS: list[Any] = _swml_seeds()
SWML_TEXT_SEEDS: list[bytes] = [p.read_bytes() for p in sorted((FIXTURES / "swaig").glob("*.swml.json"))]
SWML_TEXT_SEEDS += [p.read_bytes() for p in sorted((ROOT / "config" / "swml").glob("*.yaml"))]


# ---- byte and line mutations -----------------------------------------------------------------

# Tokens that matter to the grammars here, plus unicode that looks like what a parser wants:
# '²' and '٣' pass str.isdigit() but not int(); U+2028 splits lines in str.splitlines().
TOKENS = [
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n ",
    b"\r\n\r\n",
    b" ",
    b"\t",
    b";",
    b",",
    b"=",
    b":",
    b"<",
    b">",
    b'"',
    b"\\",
    b"/",
    b"@",
    b"[",
    b"]",
    b"%",
    b"?",
    b"\x00",
    b"\x7f",
    b"\xff",
    b"\xc3",
    b"SIP/2.0",
    b"sip:",
    b"-1",
    b"0",
    b"99999999999",
    b"4294967296",
    b"1e999",
    b"inf",
    b"nan",
    "²".encode(),
    "٣".encode(),
    "\u2028".encode(),
    "\u202e".encode(),
    "é".encode(),
    "😀".encode(),
    b"${",
    b"%{",
    b"{",
    b"}",
    b"&a ",
    b"*a",
    b"!!python/object:os.system",
]


@st.composite
def mutated_bytes(draw: st.DrawFn, seeds: list[bytes], *, lines: bool = True, limit: int = 4 * HUGE) -> bytes:
    """A seed with 1-6 edits; with `lines`, line-level edits (header shuffles) as well. The
    result is cut to `limit` bytes (SIP: 65535, what a UDP datagram or our TCP framer holds)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    ops = ["flip", "truncate", "cut", "dup", "insert", "huge"] + (["shuffle", "dupline", "dropline"] if lines else [])
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(ops))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[pos:]
        elif op == "cut":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 128))]
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == "huge":
            data[pos:pos] = draw(st.sampled_from([b"a", b"9", b" ", b";", b",", b"<", b'"', b"\\"])) * HUGE
        else:
            rows = bytes(data).split(b"\r\n")
            if len(rows) < 2:
                continue
            i, j = draw(st.integers(1, len(rows) - 1)), draw(st.integers(1, len(rows) - 1))
            if op == "shuffle":
                rows[i], rows[j] = rows[j], rows[i]
            elif op == "dupline":
                rows.insert(j, rows[i])
            else:
                del rows[i]
            data = bytearray(b"\r\n".join(rows))
    return bytes(data[:limit])


# ---- JSON-shaped values --------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "${x}", "%{call.from}", "1:30", "5m", "true", "answer_first", "²", "a" * HUGE]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_json(draw: st.DrawFn, value: Any, keys: list[str] | None = None) -> Any:
    """`value` (a copy) with 1-4 nodes replaced, removed, duplicated or re-typed."""
    value = json.loads(json.dumps(value))
    for _ in range(draw(st.integers(1, 4))):
        value = _mutate_node(draw, value, keys or [])
    return value


def _mutate_node(draw: st.DrawFn, node: Any, keys: list[str], depth: int = 0) -> Any:
    descend = isinstance(node, dict | list) and node and depth < 12 and draw(st.integers(0, 3)) > 0
    if descend:
        if isinstance(node, dict):
            key = draw(st.sampled_from(sorted(node, key=str)))
            op = draw(st.sampled_from(["into", "into", "drop", "rename"]))
            if op == "drop":
                del node[key]
            elif op == "rename":
                node[draw(st.sampled_from(keys) if keys else st.text(max_size=8))] = node.pop(key)
            else:
                node[key] = _mutate_node(draw, node[key], keys, depth + 1)
        else:
            index = draw(st.integers(0, len(node) - 1))
            op = draw(st.sampled_from(["into", "into", "drop", "dup"]))
            if op == "drop":
                del node[index]
            elif op == "dup":
                node.insert(index, json.loads(json.dumps(node[index])))
            else:
                node[index] = _mutate_node(draw, node[index], keys, depth + 1)
        return node
    op = draw(st.sampled_from(["replace", "wrap", "huge", "unicode", "number"]))
    if op == "replace":
        return draw(JSON)
    if op == "wrap":
        return draw(st.sampled_from([[node], {"x": node}, {draw(st.sampled_from(keys or ["x"])): node}]))
    if op == "huge":
        return draw(st.sampled_from(["a" * HUGE, "${" * 2048, ["x"] * 2048, "9" * 5000]))
    if op == "unicode":
        return draw(st.sampled_from(["²", "\u2028", "\ud800", "\x00", "é" * 100, "😀"]))
    return draw(st.sampled_from([0, -1, 2**31, 2**64, 1e308, float("inf"), float("nan"), True]))
