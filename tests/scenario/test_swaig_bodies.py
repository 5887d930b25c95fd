"""Webhook, hook and post-prompt bodies from a real AiSession: the conversation, SWML vars, times.

The session runs on a real Call with the scripted LLM; its SWAIG functions, hangup_hook and
post_prompt_url point at a local aiohttp agent that records every body it receives.
"""

from __future__ import annotations

from mediaserver.pipeline.llm import ToolCallRequested
from tests.scenario.ai_fakes import ScriptedLlm, tone
from tests.scenario.swaig_harness import SwaigCall
from tests.unit.swaig.agent_server import FakeAgent


def _ai(agent: FakeAgent, **params: object) -> dict[str, object]:
    return {
        "prompt": {"text": "You are a weather bot."},
        "post_prompt": {"text": "Summarize as JSON."},
        "post_prompt_url": agent.url("/post_prompt?__token=pp"),
        "params": {"swaig_post_conversation": True, "swaig_post_swml_vars": True, **params},
        "SWAIG": {
            "functions": [
                {
                    "function": "weather",
                    "description": "The weather in a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                    "web_hook_url": agent.url("/swaig?__token=w"),
                },
                {"function": "hangup_hook", "description": "Internal", "web_hook_url": agent.url("/hook")},
            ]
        },
    }


async def test_bodies_carry_the_real_conversation_swml_vars_and_post_prompt_times() -> None:
    async with FakeAgent().running() as agent:
        agent.replies["/swaig"] = [{"response": "Sunny, 21 degrees."}]
        agent.replies["/post_prompt"] = [{"success": True}]
        llm = ScriptedLlm(
            [
                "Hello, how can I help?",
                ToolCallRequested("c1", "weather", '{"city": "Paris"}'),
                "It is sunny in Paris.",
                '{"city": "Paris"}',  # the post-prompt summary
            ]
        )
        variables = {"tenant": "acme", "userVariables": {"plan": "pro"}}
        s = SwaigCall(_ai(agent), llm=llm, variables=variables, phrases={700: "what is the weather in paris"})
        await s.start()
        await s.play(ticks=70)  # the greeting: 5 words, 1 s
        await s.play(tone(700, 800))
        await s.until(lambda: any(seen.path == "/swaig" for seen in agent.seen))
        await s.until(lambda: any(m.get("content") == "It is sunny in Paris." for m in s.session.history))
        await s.close()

    by_path = {seen.path: seen.json for seen in agent.seen}
    tool = by_path["/swaig"]
    assert tool["function"] == "weather" and tool["argument"]["parsed"] == [{"city": "Paris"}]
    log = tool["call_log"]
    assert [(e["role"], e["content"]) for e in log] == [
        ("system", "You are a weather bot."),
        ("assistant", "Hello, how can I help?"),
        ("user", "what is the weather in paris"),
    ]
    stamps = [e["timestamp"] for e in log]
    assert all(isinstance(t, int) and t > 1_600_000_000_000_000 for t in stamps) and stamps == sorted(stamps)
    assert tool["raw_call_log"] == log  # nothing cut yet
    assert tool["SWMLVars"]["tenant"] == "acme" and tool["SWMLVars"]["userVariables"] == {"plan": "pro"}
    assert tool["SWMLCall"]["call_id"] == "ai1" and tool["SWMLCall"]["from"] == "sip:a@x"

    hook = by_path["/hook"]  # hangup_hook: the whole conversation, the tool round included
    roles = [e["role"] for e in hook["call_log"]]
    assert roles == ["system", "assistant", "user", "assistant", "tool", "assistant"]
    assert hook["call_log"][4]["content"] == "Sunny, 21 degrees."
    assert hook["call_log"][-1]["content"] == "It is sunny in Paris."

    post = by_path["/post_prompt"]
    assert post["post_prompt_data"]["parsed"] == [{"city": "Paris"}]
    assert [e["role"] for e in post["call_log"]] == roles and post["raw_call_log"] == post["call_log"]
    assert post["SWMLVars"]["tenant"] == "acme" and post["SWMLCall"]["call_id"] == "ai1"
    dates = [post[k] for k in ("call_start_date", "call_answer_date", "ai_start_date", "ai_end_date")]
    assert all(isinstance(d, int) and d > 1_600_000_000_000_000 for d in dates)
    assert "call_end_date" not in post  # the AI was stopped; the call is still up
    assert post["ai_start_date"] <= stamps[1] <= post["ai_end_date"]
    times = post["times"]
    assert [t["response"] for t in times] == ["Hello, how can I help?", "It is sunny in Paris."]
    assert [t["response_word_count"] for t in times] == [5, 5]
    assert all(0 <= t["answer_time"] < 30 for t in times)


async def test_without_the_params_the_bodies_leave_the_log_and_vars_out() -> None:
    async with FakeAgent().running() as agent:
        ai = _ai(agent)
        ai["params"] = {}
        llm = ScriptedLlm([ToolCallRequested("c1", "weather", '{"city": "Rome"}'), "Fine."])
        s = SwaigCall(ai, llm=llm, variables={"tenant": "acme"})
        await s.start()
        await s.until(lambda: any(seen.path == "/swaig" for seen in agent.seen))
        await s.close()
    tool = next(seen.json for seen in agent.seen if seen.path == "/swaig")
    assert not {"call_log", "raw_call_log", "SWMLVars", "SWMLCall"} & set(tool)
    post = next(seen.json for seen in agent.seen if seen.path == "/post_prompt")
    assert post["SWMLVars"] == {"tenant": "acme", "ai_agents_global_data": {}}  # the post-prompt always has them


async def test_a_barge_in_cut_shows_in_both_logs_as_the_words_heard_with_the_first_timestamp() -> None:
    async with FakeAgent().running() as agent:
        ai = _ai(agent)
        ai["SWAIG"]["functions"].append(  # type: ignore[index]
            {"function": "whoami", "description": "x", "web_hook_url": agent.url("/swaig2")}
        )
        long = "one two three four five six seven eight nine ten"
        llm = ScriptedLlm([long, ToolCallRequested("c1", "whoami", "{}"), "Done."])
        s = SwaigCall(ai, llm=llm, phrases={500: "stop that please"})
        await s.start()
        await s.play(ticks=20)
        await s.play(tone(500, 900))
        await s.until(lambda: any(seen.path == "/swaig2" for seen in agent.seen))
        await s.close()
    body = next(seen.json for seen in agent.seen if seen.path == "/swaig2")
    heard = body["call_log"][1]
    assert heard["role"] == "assistant" and long.startswith(heard["content"]) and heard["content"] != long
    raw = [e for e in body["raw_call_log"] if e["role"] == "assistant" and e.get("content")]
    assert raw[0]["content"] == heard["content"] and raw[0]["timestamp"] == heard["timestamp"]


async def test_a_caller_hangup_gives_the_post_prompt_its_call_end_date() -> None:
    async with FakeAgent().running() as agent:
        s = SwaigCall(_ai(agent), llm=ScriptedLlm(["Hello.", '{"ok": true}']))
        await s.start()
        await s.until(lambda: bool(s.session.history))
        s.call.remote_hung_up("BYE")  # the caller hangs up
        task = s.task
        assert task is not None
        await s.until(task.done)
        await s.runner.close()
    post = next(seen.json for seen in agent.seen if seen.path == "/post_prompt")
    assert post["call_end_date"] == post["ai_end_date"] >= post["ai_start_date"]
    assert [t["response"] for t in post["times"]] == ["Hello."]
