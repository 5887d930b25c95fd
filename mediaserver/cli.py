"""The `mediaserver` command: `serve` runs the server; flags and MS_* variables override config."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence

from mediaserver.settings import ConfigError, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mediaserver", description="Self-hosted AI voice media server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="listen for SIP and HTTP and run SWML call flows")
    serve.add_argument("--config", help="a TOML file overriding config/default.toml (env MS_CONFIG)")
    serve.add_argument("--sip-port", type=int, help="SIP port, UDP and TCP (env MS_SIP_PORT; default 5060)")
    serve.add_argument("--http-port", type=int, help="HTTP API port (env MS_HTTP_PORT; default 8080)")
    serve.add_argument("--host", help="address to bind SIP, RTP and HTTP (env MS_SIP_HOST)")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (env MS_LOG_LEVEL)")
    validate = sub.add_parser("validate", help="check a SWML document (file or URL); errors name the JSON path")
    validate.add_argument("source", metavar="FILE|URL", help="a JSON/YAML file, or an http(s) URL to POST a call to")
    validate.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a URL (default 10)")
    _call_parser(sub)
    _chat_parser(sub)
    bench = sub.add_parser(
        "bench",
        help="run a benchmark from benchmarks/ (a source checkout): latency, turns, capacity, ...",
        description="Runs `python -m benchmarks.NAME ARGS...` from the checkout this server was installed from; "
        "with no NAME, lists the runners.",
    )
    bench.add_argument("name", nargs="?", metavar="NAME", help="a runner in benchmarks/, e.g. turns")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="passed to the runner (try NAME --help)")
    return parser


def _call_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    call = sub.add_parser(
        "call",
        help="place a test call: speak turns, print each reply's transcript and voice-to-voice time",
        description="Dial URI, play each turn (a WAV or --say TEXT in the bundled voice), wait for the far "
        "end's reply, print its transcript and the voice-to-voice time; exit 1 if the call fails.",
    )
    call.add_argument("uri", metavar="URI", help="sip:user@host[:port]")
    speech = call.add_mutually_exclusive_group()
    speech.add_argument("--wav", help="a 16-bit PCM WAV file to say at each turn")
    speech.add_argument("--say", metavar="TEXT", help="text to say at each turn, in the bundled Piper voice")
    call.add_argument("--record", metavar="OUT.wav", help="write both directions (left: sent, right: received)")
    call.add_argument("--register", metavar="USER:PASS@REGISTRAR", help="register first; answer challenges")
    call.add_argument("--tls", action="store_true", help="SIP over TLS (not supported yet)")
    call.add_argument("--srtp", action="store_true", help="SRTP media (not supported yet)")
    call.add_argument("--codec", default="PCMU", help="PCMU, PCMA, G722 or opus (default PCMU)")
    call.add_argument("--turns", type=int, default=1, help="how many times to speak and wait (default 1; 0: listen)")
    call.add_argument(
        "--greeting-wait", type=float, default=5.0, help="seconds to wait for the far end to speak first (default 5)"
    )
    call.add_argument("--reply-timeout", type=float, default=20.0, help="seconds to wait for each reply")
    call.add_argument("--answer-timeout", type=float, default=30.0, help="seconds to wait for the answer")
    call.add_argument("--no-transcript", action="store_true", help="do not transcribe (no Whisper model)")
    call.add_argument("--json", action="store_true", help="print the report as JSON")


def _call(args: argparse.Namespace) -> int:
    from mediaserver.signaling.call_tool import CallOptions, run

    options = CallOptions(
        uri=args.uri,
        wav=args.wav,
        say=args.say,
        record=args.record,
        register=args.register,
        tls=args.tls,
        srtp=args.srtp,
        codec=args.codec,
        turns=args.turns,
        answer_timeout_s=args.answer_timeout,
        greeting_wait_s=args.greeting_wait,
        reply_timeout_s=args.reply_timeout,
        transcribe=not args.no_transcript,
    )
    return run(options, as_json=args.json)


def _chat_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chat = sub.add_parser(
        "chat",
        help="talk to an ai document in the terminal: its real tools, DataMap, contexts and post-prompt",
        description="Each line typed is the caller's turn; /quit or end of input hangs up (the post-prompt "
        "summary is then delivered and printed). Tool calls, results and actions are printed as they happen.",
    )
    chat.add_argument("source", metavar="ROUTE|FILE|URL", help="a [routes] user name, a SWML file, or a URL")
    chat.add_argument("--say", action="append", metavar="TEXT", help="a scripted caller turn (repeatable): no stdin")
    chat.add_argument("--json", action="store_true", help="one JSON object per event line")
    chat.add_argument("--config", help="a TOML file overriding config/default.toml (env MS_CONFIG)")
    chat.add_argument("--turn-timeout", type=float, default=120.0, help="seconds an agent turn may take")
    chat.add_argument("--log-level", default="WARNING", help="for the log lines on stderr (default WARNING)")


def _chat(args: argparse.Namespace) -> int:
    """Resolve the source ([routes] first), build the LLM from [llm], and chat (agents/ai/chat.py)."""
    import os
    from pathlib import Path

    from mediaserver.agents.ai import chat
    from mediaserver.logs import setup_logging
    from mediaserver.pipeline.engines import LlmOptions, load_engine

    setup_logging(args.log_level.upper())
    try:
        settings = load_settings(args.config or os.environ.get("MS_CONFIG"))
    except ConfigError as exc:
        print(f"mediaserver: bad configuration: {exc}", file=sys.stderr)
        return 2
    source: str | Path = args.source
    routes = settings.routes.users
    if not args.source.lower().startswith(("http://", "https://")):
        if args.source in routes:
            source = routes[args.source]
        elif not Path(args.source).is_file():
            known = ", ".join(sorted(routes)) or "none"
            print(f"mediaserver: {args.source}: not a route ([routes] users: {known}) nor a file", file=sys.stderr)
            return 2
    ai = settings.ai
    options = chat.ChatOptions(
        llm=load_engine("llm", ai.llm_engine, LlmOptions(base_url=ai.base_url, api_key=ai.api_key)),
        model=ai.model,
        timeout_s=ai.timeout_s,
        first_token_timeout_s=ai.first_token_timeout_s,
        signing_key=settings.swaig.key,
        fetch_timeout_s=settings.swml.fetch_timeout_s,
        envs=dict(settings.swml.envs),
        turn_timeout_s=args.turn_timeout,
    )
    typed = not args.say and sys.stdin.isatty()
    printer = chat.ChatPrinter(sys.stdout, as_json=args.json, echo_user=not typed)
    lines = chat.scripted(args.say) if args.say else chat.stdin_lines()
    route = args.source if args.source in routes else "chat"  # the call's to-URI user
    try:
        finished = asyncio.run(chat.run_chat(source, options, printer, lines, route=route))
    except chat.ChatError as exc:
        printer.flush()
        print(f"mediaserver: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0 if finished.result != "failed" else 1


def _validate(source: str, timeout_s: float) -> int:
    """Print `OK` with a summary, or every error as `SOURCE: PATH: message`; exit 1 on any error.

    The `ai` / `amazon_bedrock` / `ai_sidecar` errors that a call tolerates (the agent repairs the
    value) are errors here too; keys outside the SDK schema are printed as notes only.
    """
    from mediaserver.swml.document import all_verbs, load_document, schema_problems
    from mediaserver.swml.errors import SwmlError, SwmlErrors
    from mediaserver.swml.schema_check import SCHEMA_DEFS, check_body, schema_available

    shown = source
    try:
        if source.lower().startswith(("http://", "https://")):
            from mediaserver.kernel.fetch import FetchError, public_url, validate_url

            shown = public_url(source)  # never print the URL's password
            try:
                document = asyncio.run(validate_url(source, timeout_s))
            except FetchError as exc:
                print(str(exc) if shown in str(exc) else f"{shown}: {exc}", file=sys.stderr)
                return 1
        else:
            with open(source, "rb") as fh:
                document = load_document(fh.read(), source=source)
    except SwmlError as exc:
        return _report_errors(shown, exc.errors if isinstance(exc, SwmlErrors) else [exc])
    except OSError as exc:
        print(f"{source}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 2
    agents = [verb for verb in all_verbs(document) if verb.name in SCHEMA_DEFS]
    for verb in agents:
        for note in check_body(verb.name, verb.params, verb.path)[1]:
            print(f"{shown}: note: {note}", file=sys.stderr)
    if agents and not schema_available():
        print(f"{shown}: note: signalwire-sdk is not installed: ai bodies got the basic check only", file=sys.stderr)
    problems = schema_problems(document)
    if problems:
        return _report_errors(shown, problems)
    verbs = sum(len(v) for v in document.sections.values())
    print(f"{shown}: OK ({len(document.sections)} sections, {verbs} top-level verbs)")
    return 0


def _report_errors(shown: str, errors: Sequence[object]) -> int:
    for error in errors:
        print(f"{shown}: {error}", file=sys.stderr)
    print(f"{shown}: {len(errors)} error{'s' if len(errors) != 1 else ''}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    import os

    args = _parser().parse_args(argv)
    if args.command == "validate":
        return _validate(args.source, args.timeout)
    if args.command == "call":
        return _call(args)
    if args.command == "chat":
        return _chat(args)
    if args.command == "bench":
        from mediaserver.bench import run_bench

        return run_bench(args.name, args.args)
    from mediaserver.logs import setup_logging

    try:
        settings = load_settings(
            args.config or os.environ.get("MS_CONFIG"),
            overrides={
                "sip.port": args.sip_port,
                "http.port": args.http_port,
                "sip.host": args.host,
                "http.host": args.host,
                "logging.level": args.log_level,
            },
        )
    except ConfigError as exc:
        setup_logging("INFO")
        print(f"mediaserver: bad configuration: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.logging.level)
    from mediaserver.app import StartupError, serve

    try:
        import uvloop

        # One loop for every call: uvloop halves the per-packet cost (docs/costs.md §5).
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        loop_factory = None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(settings))
    except StartupError as exc:
        logging.getLogger("mediaserver").error("startup failed", extra={"error": str(exc)})
        print(f"mediaserver: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
