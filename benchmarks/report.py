"""Rewrite the README's results table from the last benchmark runs.

    python -m benchmarks.report [--results benchmarks/results] [--readme README.md]

Reads every known result file in the results folder and replaces the text between
`<!-- bench:start -->` and `<!-- bench:end -->` in the README with one table per benchmark and
a line describing the machine. Missing result files are listed as "not run yet".
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.stats import P95_MIN_N, tail

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
ROOT = Path(__file__).resolve().parents[1]


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("–" if v is None else str(v) for v in row) + " |" for row in rows]
    return lines


def _media(r: dict[str, Any]) -> list[str]:
    costs = r["per_frame_cost"]
    out = ["**Media primitives** (`python -m benchmarks.media`): µs per 20 ms frame, median", ""]
    codecs = sorted({k.split(".")[0] for k in costs if "." in k and not k.startswith(("jitter", "stream"))})
    out += _table(
        ["codec", "encode µs", "decode µs"],
        [[c, costs[f"{c}.encode"]["median_us"], costs[f"{c}.decode"]["median_us"]] for c in codecs],
    )
    out += ["", f"Jitter buffer push+pop: {costs['jitter.push+pop']['median_us']} µs."]
    if "stream.receive+tick.held" in costs:  # results from before this row existed lack it
        out[-1] += (
            " One call's media path per frame (PCMU; the peer's packet in, then the tick's frame out): "
            f"{costs['stream.receive+tick.held']['median_us']} µs when nobody listens to the caller, "
            f"{costs['stream.receive+tick.heard']['median_us']} µs when a tap does (every frame decoded)."
        )
    out += [""]
    out += _table(
        ["idle calls", "wakeup dev p50 ms", "wakeup dev p99 ms", "last send dev p99 ms", "late frames", "CPU % core"],
        [
            [
                p["calls"],
                p["deviation_ms_p50"],
                p["deviation_ms_p99"],
                p.get("last_send_deviation_ms_p99"),
                p["late_frames"],
                p["cpu_percent_of_one_core"],
            ]
            for p in r["pacing"]
        ],
    )
    return out


def _capacity(r: dict[str, Any]) -> list[str]:
    """A capacity result: the schema-2 runs by mode (benchmarks/capacity.py), else the older ramp's table."""
    if r.get("schema") == 2:
        return {"media": _capacity_media, "ai": _capacity_ai, "setup": _capacity_setup}[r["mode"]](r)
    return _capacity_legacy(r)


def _ran_on(r: dict[str, Any]) -> str:
    prov = r.get("provenance", {})
    pins = r.get("pinning", {}).get("applied", {})
    pinned = (
        f"server on CPU {','.join(map(str, pins['server']))}, load generator on CPU {','.join(map(str, pins['load']))}"
        if pins and pins.get("server") != pins.get("load")
        else "not pinned (both on every CPU)"
    )
    dirty = " (uncommitted changes)" if prov.get("dirty") else ""
    return f"commit {prov.get('commit')}{dirty}, {prov.get('cpu_model')}, {prov.get('cpus')} CPUs; {pinned}"


def _broke(limit: dict[str, Any]) -> str:
    if not limit.get("reached"):
        return "no rule broke at any level tried"
    rules = "; ".join(
        f"{name} (repeat {', '.join(map(str, reps))})" for name, reps in limit["rules_broken_at_next_level"].items()
    )
    return f"at {limit['broke_at']} broke: {rules}"


def _worst(rows: list[dict[str, Any]], key: str) -> Any:
    values = [x[key] for x in rows if x.get(key) is not None]
    return max(values) if values else None


def _median(rows: list[dict[str, Any]], key: str) -> Any:
    values = sorted(x[key] for x in rows if x.get(key) is not None)
    return values[(len(values) - 1) // 2] if values else None


def _capacity_media(r: dict[str, Any]) -> list[str]:
    d = r["definitions"]
    out = [
        f"**Media-plane capacity** (`python -m benchmarks.capacity media`, {r['what']}; {_ran_on(r)}; "
        f"hold {r['options']['hold_s']} s per level, {r['options']['repeats']} repeats): calls on one core "
        f"**{r['calls_on_one_core']}**, the highest level where every rule held in every repeat "
        f"({', '.join(f'{k} {v}' for k, v in r['rules'].items())}); {_broke(r['limit'])}. "
        f"RSS {r['rss_mb_per_call']} MB per call, CPU {r['cpu_percent_per_call']} % of a core per call "
        "(slopes over all levels).",
        "",
        f"Late frame: {d['late_frame_at_wire']}. Jitter: {d['jitter']}. "
        f"Server ticker late: {d['server_ticker_late_frames']}. "
        "Per level, the worst repeat (medians for CPU, RSS and setup).",
        "",
    ]
    rows = []
    for level in sorted({x["calls"] for x in r["levels"]}):
        mine = [x for x in r["levels"] if x["calls"] == level]
        held = sum(all(rule["holds"] for rule in x["rules"].values()) for x in mine)
        rows.append(
            [
                level,
                f"{held}/{len(mine)}",
                _worst(mine, "late_frames_at_wire"),
                _worst(mine, "missing_frames_at_wire"),
                _worst(mine, "jitter_ms_p99"),
                _worst(mine, "lateness_ms_max"),
                _worst(mine, "server_ticker_late_frames"),
                _median(mine, "server_cpu_percent_of_core"),
                _median(mine, "server_cpu_ms_per_call_second"),
                _median(mine, "server_rss_mb"),
                _median([x["setup_ms"] for x in mine if x["setup_ms"].get("n")], "p50"),
                _worst(mine, "generator_loop_lag_ms_p99"),
                _worst(mine, "generator_socket_drops"),
            ]
        )
    return out + _table(
        [
            "calls",
            "repeats held",
            "late frames at wire",
            "missing frames",
            "jitter p99 ms",
            "lateness max ms",
            "server ticker late (own 2 ms rule)",
            "server CPU % of one core",
            "CPU ms per call·s",
            "server RSS MB",
            "setup p50 ms (INVITE→200)",
            "generator lag p99 ms",
            "generator socket drops",
        ],
        rows,
    )


def _capacity_ai(r: dict[str, Any]) -> list[str]:
    d = r["definitions"]
    out = [
        f"**AI conversations at once** (`python -m benchmarks.capacity ai`, {r['what']}; {_ran_on(r)}; "
        f"turns for {r['options']['hold_s']} s per level, {r['options']['repeats']} repeat(s)): "
        f"**{r['concurrent_conversations']}** conversations, the highest level where every rule held "
        f"({', '.join(f'{k} {v}' for k, v in r['rules'].items())}); {_broke(r['limit'])}.",
        "",
        f"Voice-to-voice: {d['voice_to_voice_ms']}. Turn: {d['turn']}. Late frame: {d['late_frame_at_wire']}. "
        f"Server ticker late: {d['server_ticker_late_frames']}.",
        "",
    ]
    rows = [
        [
            x["calls"],
            x["repeat"],
            x["turns"],
            x["missed_replies"],
            x["voice_to_voice_ms"].get("p50"),
            tail(x["voice_to_voice_ms"]),
            x.get("voice_to_voice_p50_vs_first_level"),
            x["late_frames_at_wire"],
            x["server_ticker_late_frames"],
            x["server_cpu_percent_of_core"],
        ]
        for x in r["levels"]
    ]
    return out + _table(
        [
            "calls",
            "repeat",
            "turns (n)",
            "missed replies",
            "v2v p50 ms",
            "v2v p95 ms (else max, n)",
            "v2v p50 / first level",
            "late frames at wire",
            "server ticker late (own 2 ms rule)",
            "server CPU % of one core",
        ],
        rows,
    )


def _pct(share: float) -> str:
    return f"{100 * share:.1f}"


def _capacity_setup(r: dict[str, Any]) -> list[str]:
    o = r["options"]
    out = [
        f"**Call setup rate** (`python -m benchmarks.capacity setup`, {r['what']}; {r['server_settings']}; "
        f"{_ran_on(r)}; "
        f"each rate offered for {o['duration_s']} s, calls held {o['call_hold_s']} s): sustained "
        f"**{r['sustained_calls_per_s']}** calls/s ({', '.join(f'{k} {v}' for k, v in r['rules'].items())}); "
        f"{_broke(r['limit'])}.",
        "",
    ]
    rows = [
        [
            x["offered_calls_per_s"],
            x["invites_sent"],
            _pct(x["share_200"]),
            _pct(x["share_503"]),
            _pct(x["share_other_final"]),
            _pct(x["share_no_answer"]),
            x["answered_calls_per_s"],
            x["answered_calls_per_s_worst_1s_bin"],
            x["setup_ms"].get("p50"),
            tail(x["setup_ms"]),
        ]
        for x in r["rates"]
    ]
    return out + _table(
        [
            "offered /s",
            "INVITEs",
            "200 %",
            "503 %",
            "other final %",
            "no answer in 10 s %",
            "answered /s",
            "worst 1 s bin",
            "setup p50 ms (INVITE→200)",
            "setup p95 ms (else max, n)",
        ],
        rows,
    )


def _capacity_legacy(r: dict[str, Any]) -> list[str]:
    out = [
        f"**Capacity** (`python -m benchmarks.capacity`, {r['mode']}): calls per core ≈ "
        f"**{r['calls_per_core']}** (p99 deviation at the wire ≤ 2 ms, no late frame); pacing degrades at "
        f"{r.get('pacing_degrades_at_calls') or 'no level tried'} calls",
        "",
    ]
    out += _table(
        [
            "calls",
            "dev p50 ms",
            "dev p99 ms",
            "late",
            "server CPU %",
            "CPU ms/call·s",
            "RSS MB/call",
            "setup p50 ms",
            "setups/s",
            "generator lag p99 ms",
        ],
        [
            [
                x["calls"],
                x["deviation_ms_p50"],
                x["deviation_ms_p99"],
                x["late_frames_at_wire"],
                x["server_cpu_percent_of_core"],
                x["server_cpu_ms_per_call_second"],
                x["rss_mb_per_call"],
                x["setup_ms_p50"],
                x["setup_calls_per_s"],
                x["generator_loop_lag_ms_p99"],
            ]
            for x in r["levels"]
        ],
    )
    return out + _capacity_ai_columns(r)


def _capacity_ai_columns(r: dict[str, Any]) -> list[str]:
    """The ASR+TTS ramp also says how many turns completed and how long the server took per reply."""
    if not any("turns_completed" in x for x in r["levels"]):
        return []
    return [
        "",
        *_table(
            ["calls", "turns completed in hold", "server voice-to-voice mean ms"],
            [[x["calls"], x.get("turns_completed"), x.get("voice_to_voice_server_ms_mean")] for x in r["levels"]],
        ),
    ]


LATENCY_PATHS = ("all", "preemptive", "non-preemptive")


def _p50(summary: dict[str, Any], n: int) -> Any:
    """A p50 cell; its own n when fewer turns than the row's had that event."""
    if not summary.get("n"):
        return None
    return summary["p50"] if summary["n"] == n else f"{summary['p50']} (n={summary['n']})"


def _detector(d: dict[str, Any], n: int) -> Any:
    """Detector CPU ms per turn (p50) and how many checks a turn had on average."""
    cell = _p50(d.get("cpu_ms_per_turn", d["wall_ms_per_turn"]), n)
    return None if cell is None else f"{cell} ({d['checks_per_turn_mean']} checks)"


def _latency(r: dict[str, Any]) -> list[str]:
    title = "**Voice-to-voice latency** (`python -m benchmarks.latency`)"
    if "commit" not in r or "goal" not in r:
        return [
            f"{title}: the result file predates stage times measured from the caller's last "
            "speech packet (issue 15); rerun the benchmark.",
            "",
        ]
    g, v = r["goal"], r["goal"]["measured"]
    overrides = r.get("config_overrides") or {}
    setup = (
        "shipped defaults"
        if not overrides
        else "shipped defaults except " + ", ".join(f"{k} = {val}" for k, val in overrides.items())
    )
    if "p90" in v:
        judged = "met" if g["met"] else "**not met**"
        measured = f"p50 **{v['p50']} ms**, p90 **{v['p90']} ms** (n={v['n']}): {judged}"
    elif v.get("n"):
        measured = f"p50 **{v['p50']} ms**, no p90 below 10 turns (n={v['n']}, max {v['max']} ms): not judged"
    else:
        measured = "no turn measured"
    recovered = r["overall"]["all"].get("answered_by_recovery_phrase", 0)
    left_out = f" ({recovered} more answered by a recovery phrase, left out)" if recovered else ""
    out = [
        f"{title}: {r['conversations']} conversations ({r['failed_conversations']} failed), "
        f"{r['overall']['all']['turns']} caller turns (whole sentences){left_out}, {setup}. "
        f"Goal {g['case']}: voice-to-voice p50 ≤ {g['voice_to_voice_p50_ms']} ms, p90 ≤ "
        f"{g['voice_to_voice_p90_ms']} ms; measured {measured}.",
        "",
    ]
    wire, stages = [], []
    for case, paths in r["by_case"].items():
        for path in LATENCY_PATHS:
            c = paths[path]
            v2v, n = c["voice_to_voice_ms"], c["turns"]
            st = c["stages_ms"]
            wire.append(
                [
                    case,
                    path,
                    n,
                    v2v.get("p50"),
                    v2v.get("p90", "– (n<10)" if v2v["n"] else None),
                    tail(v2v),
                    _p50(c["voice_to_voice_first_packet_ms"], n),
                    _p50(c["after_endpoint_wire_ms"], n),
                ]
            )
            stages.append(
                [
                    case,
                    path,
                    n,
                    _p50(st["endpoint_ms"], n),
                    _p50(st["asr_final_ms"], n),
                    _p50(st["llm_first_token_ms"], n),
                    _p50(st["tts_first_audio_ms"], n),
                    _p50(st["first_agent_frame_ms"], n),
                    _p50(v2v, n),
                    _detector(c["detector"], n),
                ]
            )
    out += _table(
        [
            "case",
            "path",
            "turns",
            "v2v p50 ms",
            "v2v p90 ms",
            "v2v p95 ms (max if n<20)",
            "1st packet p50 ms",
            "endpoint → 1st packet p50 ms",
        ],
        wire,
    )
    out += [""]
    out += _table(
        [
            "case",
            "path",
            "turns",
            "endpoint decided",
            "ASR final ready",
            "LLM 1st token",
            "TTS 1st audio synthesized",
            "1st agent frame sent",
            "1st audible packet received",
            "detector CPU ms/turn p50 (checks/turn)",
        ],
        stages,
    )
    lag = r.get("generator_loop_lag_ms") or {}
    dirty = " (uncommitted changes)" if r.get("dirty") else ""
    out += [
        "",
        "Every column starts at the caller's last speech packet sent (the sentence's last 20 ms frame "
        "with energy, on the generator's clock, same host as the server) and ends at its own event: "
        "v2v = the reply's first audible agent packet received; 1st packet = its first packet "
        "(RTP marker); endpoint decided, ASR final ready, LLM 1st token, 1st agent frame sent = the "
        "server's `turn_endpoint`, `turn_asr_final`, `turn_llm_first_token`, `turn_first_agent_frame` "
        "log times; TTS 1st audio synthesized = `turn_tts_synthesized` (the reply's first chunk "
        "synthesized, before a preemptive reply waits for the endpoint). Endpoint → 1st packet: "
        "`turn_endpoint` → the reply's first packet received. Stage "
        "cells are p50 ms (their own n where fewer turns had the event). Path: preemptive = the reply "
        "started on the ASR final before the endpoint and was released at it; non-preemptive = it "
        "started at the endpoint. Percentiles are nearest-rank; p90 only where n ≥ 10, p95 only where "
        "n ≥ 20, else the max, labelled. Detector: CPU ms of the end-of-turn inferences logged per "
        "turn (`turn_check.cpu_ms`, the detector thread's own time).",
        "",
        f"Commit `{r['commit']}`{dirty}, {r.get('cpu_model')}, {r['machine'].get('cpus')} vCPUs; "
        f"generator loop lag p99 {lag.get('p99_ms')} ms.",
    ]
    return out


def _bargein(r: dict[str, Any]) -> list[str]:
    b, f, h = r["onset_to_last_packet_ms"], r["frames_after_decision"], r["heard_text_within_one_word"]
    ran_on = f"; {_commit(r)}" if r.get("commit") else "; commit not recorded (an old result: rerun)"
    out = [
        f"**Barge-in** (`python -m benchmarks.bargein`{ran_on}): {r['interruptions']} interruptions, "
        f"{r['missed_barge_ins']} missed, {r['failed_calls']} failed calls. Onset: the first caller frame "
        "sent with speech energy; last packet: the last agent packet received that is not digital silence.",
        "",
    ]
    enough = b.get("n", 0) >= P95_MIN_N and b.get("p95") is not None  # an old result has p95 at any n
    out += _table(
        [
            "onset → last packet p50 ms",
            "p95 ms (goal ≤ 120)" if enough else f"max ms (n = {b.get('n')} < {P95_MIN_N}: no p95; goal p95 ≤ 120)",
            "max ms",
            "onset → decision p50 ms",
            "frames after decision (time / cursor)",
            "heard text within one word",
        ],
        [
            [
                b["p50"],
                b["p95"] if enough else b["max"],
                b["max"],
                r["onset_to_decision_ms"]["p50"],
                f"{f['total']} / {f['cursor_total']} ({f['cursor_checked_calls']} calls checked)",
                f"{h['share']} of {h['n']}",
            ]
        ],
    )
    out += [""] + _table(
        ["probe", "calls", "false barge-ins (flushed)", "paused then resumed", "longest pause ms"],
        [
            [k, v["calls"], v["false_barge_ins"], v["paused_then_resumed"], v.get("max_pause_ms")]
            for k, v in r["false_barge_in_probes"].items()
        ],
    )
    return out


def _asr(r: dict[str, Any]) -> list[str]:
    asr, vad, tts = r["asr"], r["vad"], r["tts"]
    ran = f"; commit {r['commit']}, {r.get('cpu_model') or 'CPU not recorded'}" if r.get("commit") else ""
    out = [f"**Speech engines** (`python -m benchmarks.asr`{ran}): medians (p10–p90)", ""]
    rows = []
    for key, value in asr["latency_ms"].items():
        bucket, mode = key.split(".", 1)
        rows.append(
            [
                f"ASR {bucket} utterance, {mode.replace('_', ' ')}",
                f"{value['median']:.0f} ms ({value['p10']:.0f}–{value['p90']:.0f})",
            ]
        )
    rows += [[f"ASR word recall, {k.replace('_', ' ')}", v] for k, v in asr["word_recall"].items()]
    rows += [
        ["VAD webrtcvad + energy floor, per 20 ms frame", f"{vad['webrtc_us_per_frame']['median']} µs"],
        ["VAD silero confirmer, per 20 ms frame", f"{vad['silero_us_per_frame']['median']} µs"],
        [
            f"Piper first clause ({tts['first_clause_text']!r}), time to first audio",
            f"{tts['ttfa_ms']['first_clause']['median']:.0f} ms",
        ],
        [
            f"Piper first sentence ({tts['first_sentence_text']!r}), time to first audio",
            f"{tts['ttfa_ms']['first_sentence']['median']:.0f} ms",
        ],
        ["Piper word ends vs whisper, median error", f"{tts['word_end_error_vs_whisper_ms']['median']:.0f} ms"],
    ]
    return out + _table(["measure", "value"], rows)


def _generic(r: dict[str, Any]) -> list[str]:
    """Any other runner: its scalar summary fields as a two-column table."""
    name = r.get("benchmark", "?")
    summary = r.get("summary", {k: v for k, v in r.items() if isinstance(v, int | float | str)})
    return [f"**{name}** (`python -m benchmarks.{name}`)", ""] + _table(
        ["metric", "value"], [[k, v] for k, v in summary.items()]
    )


def _commit(r: dict[str, Any]) -> str:
    dirty = " (uncommitted changes)" if r.get("dirty") else ""
    return f"commit {str(r.get('commit', '?'))[:7]}{dirty}, {r.get('cpu_model', '?')}"


def _turns(r: dict[str, Any]) -> list[str]:
    fc, v2v = r["false_cutoff"], r["voice_to_voice_ms"]
    tail_label, tail_value = (
        ("p90", v2v.get("p90")) if "p90" in v2v else ("max (n < 10)", v2v.get("max_(n<10, no p90)"))
    )
    out = [
        f"**Turn taking** (`python -m benchmarks.turns`; {_commit(r)}; PCMU, LLM first token "
        f"{r['ttft_ms']} ms, end_of_speech_timeout {r['end_of_speech_timeout_ms']} ms, voices "
        f"{', '.join(r['voices'])}): {r['n']['whole']} whole and {r['n']['paused']} paused caller turns.",
        "",
        f"False cut-off: {r['definitions']['false_cutoff']}. Voice-to-voice: {r['definitions']['voice_to_voice_ms']}.",
        "",
    ]
    wilson = fc.get("wilson95") or ["?", "?"]
    rows = [["all pauses 0.5–1.5 s", fc["n"], fc["false_cutoffs"], fc["rate"], f"{wilson[0]}–{wilson[1]}"]]
    for bucket, b in r["false_cutoff_by_pause_s"].items():
        w = b.get("wilson95") or ["?", "?"]
        rows.append([f"pause {bucket}", b["n"], b["false_cutoffs"], b["rate"], f"{w[0]}–{w[1]}"])
    out += _table(["paused turns", "n", "false cut-offs", "rate (goal ≤ 0.05)", "95 % interval"], rows)
    out += [
        "",
        *_table(
            [
                "whole turns: voice-to-voice n",
                "p50 ms (goal ≤ 450)",
                f"{tail_label} ms (goal p90 ≤ 600)",
                "missed answers",
            ],
            [[v2v["n"], v2v.get("p50"), tail_value, r["missed_answers"]["whole"]]],
        ),
    ]
    stages = r.get("whole_turn_stages_ms")
    if stages and stages.get("n"):
        names = [k for k in stages if k not in ("n", "endpoint_reasons") and stages[k]]
        out += [
            "",
            f"Where the whole turns' gap goes: median of each server stage, ms after the caller's last "
            f"speech packet (n = {stages['n']}; endpoints by reason: {stages.get('endpoint_reasons')}).",
            "",
        ]
        out += _table([n.removesuffix("_ms") for n in names], [[stages[n]["p50"] for n in names]])
    return out


def _turn_verdicts(r: dict[str, Any]) -> list[str]:
    def signals(counts: dict[str, int]) -> str:
        return f"{counts['1']} / {counts['0']} / {counts['-1']}"

    rows = [
        [
            voice,
            s["n"]["whole"],
            s["n"]["paused"],
            s["model_auc"]["250ms"],
            s["model_auc"]["500ms"],
            signals(s["text_signal"]["whole"]),
            signals(s["text_signal"]["paused"]),
        ]
        for voice, s in r["summary"].items()
    ]
    return [
        f"**End-of-turn signals on the turn benchmark's utterances** (`python -m benchmarks.turn_verdicts`; "
        f"{_commit(r)}; no server, PCMU round trip). Model AUC: {r['definitions']['model_auc']}. Text: "
        f"{r['definitions']['text_signal']}.",
        "",
        *_table(
            [
                "voice",
                "whole n",
                "paused n",
                "model AUC 250 ms",
                "model AUC 500 ms",
                "whole: text +1 / 0 / -1",
                "paused: text +1 / 0 / -1",
            ],
            rows,
        ),
    ]


def _soak(r: dict[str, Any]) -> list[str]:
    c, wire, mem = r["config"], r["late_frames_at_wire"], r["memory"]
    calls = r.get("calls", {})
    placed = " + ".join(f"{v.get('placed')} {k}" for k, v in calls.items() if isinstance(v, dict))
    return [
        f"**Soak** (`python -m benchmarks.soak`; {_commit(r)}; {r.get('box', '')}): "
        f"{c['calls']} media + {c['ai_calls']} AI calls held for {c['minutes']:g} min, each call "
        f"{c['call_seconds'][0]:g}–{c['call_seconds'][1]:g} s then replaced.",
        "",
        *_table(
            [
                "calls placed",
                "dropped",
                "late frames at wire (> 20 ms)",
                "server ticker late (2 ms rule)",
                "leaked tasks",
                "leaked fds",
                "RSS growth after warm-up % (goal < 5)",
                "server idle after",
            ],
            [
                [
                    placed.get("placed", placed) if isinstance(placed, dict) else placed,
                    r["dropped_calls"],
                    f"{wire['late_frames']} of {wire['packets']}",
                    r["server_ticker_late_frames"],
                    r["leaked_tasks"],
                    r["leaked_fds"],
                    mem["growth_percent"],
                    r["server_idle_after_run"],
                ]
            ],
        ),
    ]


def _floods(r: dict[str, Any]) -> list[str]:
    c = r["config"]
    rows = []
    for ph in r["phases"]:
        flood, wire = ph.get("flood") or {}, ph["live_calls_wire"]
        rows.append(
            [
                ph["phase"],
                flood.get("rate_sent_per_s", "–"),
                flood.get("share_503", "–"),
                f"{wire['late_frames']} of {wire['packets']}",
                wire["deviation_ms_p99"],
                ph["dropped_live_calls"],
                ph["server_cpu_percent_of_core"],
            ]
        )
    return [
        f"**Floods beside live calls** (`python -m benchmarks.floods`; {_commit(r)}; {r.get('box', '')}): "
        f"{c.get('live_calls')} live calls; each phase floods from another address for {c.get('seconds')} s.",
        "",
        *_table(
            [
                "phase",
                "flood sent /s",
                "share answered 503",
                "live frames late (> 20 ms)",
                "live deviation p99 ms",
                "live calls dropped",
                "server CPU % of a core",
            ],
            rows,
        ),
    ]


def _asr_contention(r: dict[str, Any]) -> list[str]:
    """What one ASR final costs alone and beside the detector and a partial, per thread count."""
    defs = r.get("definitions", {})
    rows = [
        [
            threads.split("_")[0],
            ms.get("alone"),
            ms.get("with_detector"),
            ms.get("with_detector_and_partial"),
            r.get("detector_ms_median", {}).get(threads),
        ]
        for threads, ms in r["final_ms_median"].items()
    ]
    return [
        f"**ASR final under contention** (`python -m benchmarks.asr_contention`; {_commit(r)}; "
        f"{r.get('speech_s')} s of speech, median of {r.get('repeats')}): final = {defs.get('final_ms', '')}; "
        f"detector = {defs.get('with_detector', '')}; partial = {defs.get('with_detector_and_partial', '')}.",
        "",
        *_table(
            ["Whisper threads", "final alone ms", "+ detector ms", "+ detector + partial ms", "detector alone ms"],
            rows,
        ),
    ]


def _llm_request_cost(r: dict[str, Any]) -> list[str]:
    """The loop's CPU to start one LLM reply: the server's engine against the openai SDK."""
    rows = [
        [name, r[key]["n"], r[key]["p50_ms"], r[key]["max_ms"]]
        for name, key in (("engine (aiohttp)", "engine"), ("openai SDK", "openai_sdk"))
    ]
    return [
        f"**Starting an LLM reply on the event loop** (`python -m benchmarks.llm_request_cost`; {_commit(r)}): "
        f"{r.get('definition', '')}. SDK p50 / engine p50: {r.get('sdk_over_engine_p50')}.",
        "",
        *_table(["client", "requests (n)", "CPU ms p50", "CPU ms max"], rows),
    ]


RENDERERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "llm_request_cost": _llm_request_cost,
    "asr_contention": _asr_contention,
    "turns": _turns,
    "turn_verdicts": _turn_verdicts,
    "soak": _soak,
    "floods": _floods,
    "asr": _asr,
    "media": _media,
    "capacity": _capacity,
    "latency": _latency,
    "bargein": _bargein,
}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def render(results: Path) -> str:
    files = sorted(results.glob("*.json"))
    lines: list[str] = []
    machine = None
    cpu = None  # the CPU a result recorded; else this machine's, which may not be the one it ran on
    for path in files:
        data = json.loads(path.read_text())
        data.setdefault("benchmark", path.stem)  # older runners (latency_ai) do not name themselves
        if not machine or "platform" not in machine:
            machine = data.get("machine") or machine
        cpu = cpu or data.get("cpu_model")
        lines += RENDERERS.get(data.get("benchmark", ""), _generic)(data) + [""]
    if not files:
        lines = ["No benchmark has been run yet.", ""]
    if machine:
        lines.insert(
            0,
            f"Machine: {cpu or _cpu_model()}, {machine.get('cpus')} vCPUs, Python {machine.get('python')}, "
            f"{machine.get('platform')}. Regenerate with `python -m benchmarks.report`.\n",
        )
    return "\n".join(lines).rstrip() + "\n"


def update_readme(readme: Path, results: Path) -> None:
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme}: markers {START} … {END} not found")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + START + "\n" + render(results) + END + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--readme", default=str(ROOT / "README.md"))
    args = parser.parse_args(argv)
    update_readme(Path(args.readme), Path(args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
