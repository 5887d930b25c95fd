"""Capacity of one server process, in three modes; JSON and a PNG per mode in benchmarks/results.

    python -m benchmarks.capacity media [--levels 50,100,...,400] [--repeats 3] [--hold 10] [--no-pin]
    python -m benchmarks.capacity ai    [--levels 1,4,8,12,16] [--repeats 2] [--hold 60]
    python -m benchmarks.capacity setup [--rates 50,100,150,200] [--duration 30] [--no-pin]

* media (capacity.json; benchmarks/capacity_media.py): idle-audio PCMU calls with the server
  pinned to core 0 and the load generator to core 1; a ramp with repeats; the limit is reported
  as "calls on one core" at the last level where every rule held in every repeat, with the rule
  that broke at the next level.
* ai (capacity_ai.json; benchmarks/capacity_ai.py): N concurrent callers in the `ai` verb who
  talk like callers (a sentence, wait for the reply, a pause, the next sentence); per level the
  wire's late frames, the server ticker's own late count and voice-to-voice at the wire. Not
  pinned by default (the whole box, as the goal states).
* setup (capacity_setup.json; benchmarks/capacity_setup.py): INVITEs at a fixed offered rate
  for `duration` seconds from a configured trunk with the rate limiter at its defaults; shares
  answered 200 / 503 / other / no answer, and the rate sustained.

Every result records the commit (and whether the tree was dirty), the CPU model, the affinity
actually applied, and the definition of each word it uses (`definitions`). The old flag
`--mode ai` still works.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.capacity_common import RESULTS, pin_process, write_result

STEMS = {"media": "capacity", "ai": "capacity_ai", "setup": "capacity_setup"}


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _cpus(text: str) -> frozenset[int] | None:
    return frozenset(_ints(text)) or None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode_arg", nargs="?", choices=tuple(STEMS), help="media (default), ai or setup")
    parser.add_argument("--mode", choices=tuple(STEMS), help="same as the positional mode (older spelling)")
    parser.add_argument("--levels", help="concurrent calls per level (media 50..400 step 50; ai 1,4,8,12,16)")
    parser.add_argument("--repeats", type=int, help="ramps run (media 3, ai 2)")
    parser.add_argument("--hold", type=float, help="seconds measured at each level (media 10, ai 60)")
    parser.add_argument("--keep-going", action="store_true", help="media: measure every level after a break too")
    parser.add_argument("--rates", default="50,100,150,200", help="setup: offered INVITEs per second, one run each")
    parser.add_argument("--duration", type=float, default=30.0, help="setup: seconds each rate is offered")
    parser.add_argument("--call-hold", type=float, default=1.0, help="setup: seconds each answered call is held")
    parser.add_argument("--no-trunk", action="store_true", help="setup: no trunk, so the default rate limiter applies")
    parser.add_argument("--server-cpus", default="0", help="cores the server is pinned to (media, setup)")
    parser.add_argument("--load-cpus", default="1", help="cores the load generator is pinned to (media, setup)")
    parser.add_argument("--no-pin", action="store_true", help="leave both processes on every core")
    parser.add_argument("--pin", action="store_true", help="ai: pin as media does (default: the whole box)")
    parser.add_argument("--out", default=str(RESULTS))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    mode = args.mode_arg or args.mode or "media"
    pin = not args.no_pin and (mode != "ai" or args.pin)
    server_cpus, load_cpus = (_cpus(args.server_cpus), _cpus(args.load_cpus)) if pin else (None, None)
    out = Path(args.out)
    # The run pins this process to the load cores; a caller (a test session) gets its CPUs back.
    original = os.sched_getaffinity(0)
    try:
        result, plot = _run(mode, args, server_cpus, load_cpus)
    finally:
        pin_process(os.getpid(), set(original))
    stem = STEMS[mode]
    write_result(result, out, stem)
    plot(result, out / f"{stem}.png")
    print(json.dumps(result, indent=2))
    return 0


def _run(
    mode: str, args: argparse.Namespace, server_cpus: frozenset[int] | None, load_cpus: frozenset[int] | None
) -> tuple[dict[str, Any], Callable[[dict[str, Any], Path], None]]:
    if mode == "media":
        from benchmarks import capacity_media as m

        base_media = m.MediaOptions()
        opts = m.MediaOptions(
            levels=_ints(args.levels) if args.levels else base_media.levels,
            repeats=args.repeats or base_media.repeats,
            hold_s=args.hold if args.hold is not None else base_media.hold_s,
            stop_at_break=not args.keep_going,
            server_cpus=server_cpus,
            load_cpus=load_cpus,
        )
        result = m.run(opts)
        plot = m.plot
    elif mode == "ai":
        from benchmarks import capacity_ai as a

        base = a.AiOptions()
        result = a.run(
            a.AiOptions(
                levels=_ints(args.levels) if args.levels else base.levels,
                repeats=args.repeats or base.repeats,
                hold_s=args.hold if args.hold is not None else base.hold_s,
                server_cpus=server_cpus,
                load_cpus=load_cpus,
            )
        )
        plot = a.plot
    else:
        from benchmarks import capacity_setup as s

        result = s.run(
            s.SetupOptions(
                rates=_ints(args.rates),
                duration_s=args.duration,
                call_hold_s=args.call_hold,
                trunk=not args.no_trunk,
                server_cpus=server_cpus,
                load_cpus=load_cpus,
            )
        )
        plot = s.plot
    return result, plot


if __name__ == "__main__":
    sys.exit(main())
