"""The interpreter as effects out for results in: no call, no clock, no I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver.swml.document import load_document
from mediaserver.swml.effects import (
    Ai,
    Answer,
    Effect,
    Finished,
    Hangup,
    Play,
    Played,
    PlayFile,
    PlayRing,
    PlaySay,
    PlaySilence,
    RecordCall,
    Sleep,
    Unsupported,
)
from mediaserver.swml.errors import SwmlError, SwmlLoopError, SwmlStateError
from mediaserver.swml.interpreter import Interpreter

FIXTURES = Path(__file__).parent / "fixtures"


def run(interpreter: Interpreter, limit: int = 100) -> list[Effect]:
    """Drive a script to its end, answering every effect with None (or Played for Play)."""
    effects = [interpreter.start()]
    while not interpreter.done:
        assert len(effects) < limit
        effects.append(interpreter.resume(Played(True) if isinstance(effects[-1], Play) else None))
    return effects


def interpret(text: str, **kwargs: object) -> Interpreter:
    return Interpreter(load_document(text), **kwargs)  # type: ignore[arg-type]


def test_answer_play_sleep_hangup() -> None:
    document = load_document((FIXTURES / "good" / "answer_play_hangup.yaml").read_text())
    assert run(Interpreter(document)) == [
        Answer(path="sections.main[0]", max_duration_s=3600, codecs="PCMU,PCMA"),
        Play(
            path="sections.main[1]",
            items=(
                PlaySay("Hello there. Thanks for calling.", voice="en_US-joe-medium"),
                PlaySilence(1500),
                PlayRing(10_000, "us"),
                PlayFile("https://example.com/hold.mp3"),
                PlayFile("file:///var/lib/sounds/beep.wav"),
            ),
            volume_db=-6.0,
            auto_answer=True,
        ),
        Sleep(path="sections.main[2]", duration_ms=500),
        Hangup(path="sections.main[3]", reason="busy"),
    ]


def test_defaults_and_finished_when_verbs_run_out() -> None:
    effects = run(interpret('{"sections": {"main": ["answer", {"play": {"url": "say:Hi", "auto_answer": false}}]}}'))
    assert effects == [
        Answer(path="sections.main[0]"),
        Play(path="sections.main[1]", items=(PlaySay("Hi"),), volume_db=0.0, auto_answer=False),
        Finished(path="sections.main"),
    ]


def test_play_say_takes_voice_language_gender() -> None:
    effect = interpret(
        "sections:\n  main:\n    - play: {urls: ['say:a', 'silence:1'], say_voice: v, say_language: en-GB,"
        " say_gender: male, status_url: 'https://e.com/s'}\n"
    ).start()
    assert isinstance(effect, Play)
    assert effect.items == (PlaySay("a", "v", "en-GB", "male"), PlaySilence(1000))
    assert effect.status_url == "https://e.com/s"


def test_hangup_default_reason_and_sleep_forever() -> None:
    effects = run(interpret('{"sections": {"main": [{"sleep": -1}, "hangup"]}}'))
    assert effects == [Sleep(path="sections.main[0]", duration_ms=-1), Hangup(path="sections.main[1]")]


def test_sdk_document_gives_record_call_then_ai() -> None:
    effects = run(interpret((FIXTURES / "good" / "sdk_agent.json").read_text()))
    assert [type(e) for e in effects] == [Answer, RecordCall, Ai, Finished]
    record, ai = effects[1], effects[2]
    assert isinstance(record, RecordCall) and isinstance(ai, Ai)
    assert record.path == "sections.main[1]"
    assert (ai.verb, ai.path) == ("ai", "sections.main[2]") and "prompt" in ai.params


def test_unsupported_verbs_come_out_as_effects_and_the_script_goes_on() -> None:
    effects = run(interpret('{"sections": {"main": [{"send_fax": {"document": "https://e.com/a.pdf"}}, "hangup"]}}'))
    assert effects == [
        Unsupported(path="sections.main[0]", verb="send_fax", params={"document": "https://e.com/a.pdf"}),
        Hangup(path="sections.main[1]"),
    ]


def test_labels_run_silently_and_return_ends_main() -> None:
    interpreter = Interpreter(load_document((FIXTURES / "good" / "sections_labels.yaml").read_text()))
    assert run(interpreter) == [
        Sleep(path="sections.main[1]", duration_ms=250),
        Sleep(path="sections.main[2]", duration_ms=-1),
        Finished(path="sections.main[4]"),
    ]
    assert interpreter.variables["return_value"] == {"status": "ok"}
    assert interpreter.frames == ()


def test_frames_show_the_program_counter() -> None:
    interpreter = interpret('{"sections": {"main": ["answer", {"sleep": 10}, "hangup"]}}')
    interpreter.start()
    assert interpreter.frames == (("main", 1),)
    interpreter.resume()
    assert interpreter.frames == (("main", 2),)


def test_variables_are_copied_in() -> None:
    given = {"call": {"from": "+15551234567"}}
    interpreter = interpret('{"sections": {"main": [{"return": 1}]}}', variables=given)
    assert run(interpreter) == [Finished(path="sections.main[0]")]
    assert interpreter.variables == {"call": {"from": "+15551234567"}, "return_value": 1}
    assert given == {"call": {"from": "+15551234567"}}


def test_results_are_recorded() -> None:
    interpreter = interpret('{"sections": {"main": [{"play": {"url": "silence:1"}}, "hangup"]}}')
    interpreter.start()
    interpreter.resume(Played(completed=False))
    assert interpreter.last_result == Played(completed=False)


@pytest.mark.parametrize("final", ['"hangup"', '{"return": null}'])
def test_resume_after_the_end_raises(final: str) -> None:
    interpreter = interpret(f'{{"sections": {{"main": [{final}]}}}}')
    effect = interpreter.start()
    assert isinstance(effect, Hangup | Finished)
    assert interpreter.done
    with pytest.raises(SwmlStateError, match=r"resume\(\) is not allowed when the interpreter is done"):
        interpreter.resume()


def test_start_twice_and_resume_before_start_raise() -> None:
    interpreter = interpret('{"sections": {"main": ["answer"]}}')
    with pytest.raises(SwmlStateError, match=r"resume\(\) is not allowed when the interpreter is new"):
        interpreter.resume()
    interpreter.start()
    with pytest.raises(SwmlStateError, match=r"start\(\) is not allowed when the interpreter is waiting"):
        interpreter.start()


def test_step_budget_stops_long_runs_of_control_verbs() -> None:
    labels = ", ".join(f'{{"label": "l{i}"}}' for i in range(5))
    text = f'{{"sections": {{"main": [{labels}, "hangup"]}}}}'
    assert run(interpret(text, step_budget=6)) == [Hangup(path="sections.main[5]")]
    interpreter = interpret(text, step_budget=5)
    with pytest.raises(SwmlLoopError) as caught:
        interpreter.start()
    assert str(caught.value) == (
        "sections.main[4]: 5 control steps without an effect (a runaway goto or execute loop?)"
    )
    assert interpreter.done  # an error ends the script: no half-run state to resume
    with pytest.raises(SwmlStateError):
        interpreter.resume()


def test_step_budget_resets_after_each_effect() -> None:
    verbs = '{"label": "a"}, {"label": "b"}, {"sleep": 1}, {"label": "c"}, {"label": "d"}'
    effects = run(interpret(f'{{"sections": {{"main": [{verbs}]}}}}', step_budget=3))
    assert effects == [Sleep(path="sections.main[2]", duration_ms=1), Finished(path="sections.main")]


def test_step_budget_must_be_positive() -> None:
    with pytest.raises(ValueError):
        interpret('{"sections": {"main": []}}', step_budget=0)


def test_empty_main_finishes_at_once() -> None:
    assert run(interpret('{"sections": {"main": []}}')) == [Finished(path="sections.main")]


def test_expressions_expand_in_numbers_and_urls() -> None:
    document = load_document((FIXTURES / "good" / "expressions.json").read_text())
    interpreter = Interpreter(document, variables={"limit": 60, "pause": "250"}, call={"from": "+15551234567"})
    effects = run(interpreter)
    assert effects[0] == Answer(path="sections.main[0]", max_duration_s=60)
    assert effects[1] == Sleep(path="sections.main[1]", duration_ms=250)
    assert isinstance(effects[2], Play) and effects[2].items == (PlaySay("Hello +15551234567"),)


def test_expression_errors_name_the_path() -> None:
    document = load_document((FIXTURES / "good" / "expressions.json").read_text())
    with pytest.raises(SwmlError) as caught:
        Interpreter(document).start()  # vars.limit is undefined: no integer
    assert str(caught.value) == "sections.main[0].answer.max_duration: expected an integer, got None"
