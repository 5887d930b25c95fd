"""The page's agent transcript follows the played cursor, word by word, and shows barge-in cuts."""

from __future__ import annotations

from typing import Any

from mediaserver.kernel.agent import AgentEvent, Conversation
from mediaserver.signaling.heard_transcript import HeardTranscript

REPLY = 111  # the conversation entry key of a reply


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in messages]


def test_words_appear_as_the_cursor_passes_their_end_then_the_entry_text() -> None:
    heard = HeardTranscript()
    assert heard.speaking(REPLY, [("On", 100), ("Saturday", 300)]) == []
    assert heard.played(99) == []  # the first word's last sample has not left yet
    [first] = heard.played(100)
    assert first == {
        "type": "transcript",
        "role": "agent",
        "key": 1,
        "text": "On",
        "update": False,
        "speaking": True,
        "cut": False,
    }
    heard.speaking(REPLY, [("we", 400), ("open", 500)])  # the next clause of the same reply
    # The whole reply enters the conversation while it is still being played: not shown yet.
    assert heard.entry("added", REPLY, {"role": "assistant", "content": "On Saturday, we open."}) == []
    assert texts(heard.played(450)) == ["On Saturday we"]
    [last] = heard.played(10_000)
    assert last["text"] == "On Saturday, we open." and last["update"] and not last["speaking"]
    assert heard.played(20_000) == []


def test_a_barge_in_drops_the_unplayed_words_and_shows_the_cut_as_interrupted() -> None:
    heard = HeardTranscript()
    heard.speaking(REPLY, [("We", 100), ("open", 200), ("at", 300), ("nine", 400)])
    assert texts(heard.played(250)) == ["We open"]
    assert heard.playout_cleared() == [  # the rest will never be heard
        {
            "type": "transcript",
            "role": "agent",
            "key": 1,
            "text": "We open",
            "update": True,
            "speaking": False,
            "cut": False,
        }
    ]
    assert heard.played(400) == []  # new audio reuses the marks: the dropped words stay dropped
    # The reply was still generating: the agent adds the cut as a new entry.
    [cut] = heard.entry("added", REPLY, {"role": "assistant", "content": "We open"})
    assert cut["key"] == 1 and cut["text"] == "We open" and cut["cut"]


def test_an_entry_cut_after_it_was_added_is_updated_in_place() -> None:
    heard = HeardTranscript()
    heard.speaking(REPLY, [("We", 100), ("open", 200), ("at", 300)])
    heard.entry("added", REPLY, {"role": "assistant", "content": "We open at nine."})
    heard.played(150)
    heard.playout_cleared()
    [cut] = heard.entry("updated", REPLY, {"role": "assistant", "content": "We"})
    assert cut["text"] == "We" and cut["cut"] and cut["key"] == 1
    [gone] = heard.entry("removed", REPLY, {"role": "assistant", "content": "We"})
    assert gone["text"] == "" and gone["key"] == 1  # nothing heard: the page drops the line


def test_replies_are_separate_lines_even_when_an_entry_key_comes_back() -> None:
    heard = HeardTranscript()
    heard.speaking(REPLY, [("Hello", 100)])
    heard.entry("added", REPLY, {"role": "assistant", "content": "Hello."})
    assert texts(heard.played(100)) == ["Hello."]
    heard.speaking(REPLY, [("Bye", 200)])  # a new entry at the freed address of the old one
    [bye] = heard.played(200)
    assert bye["key"] == 2 and bye["text"] == "Bye" and not bye["update"]


def test_entries_spoken_without_words_show_whole_and_other_roles_are_ignored() -> None:
    heard = HeardTranscript()
    assert heard.entry("added", 5, {"role": "user", "content": "hi"}) == []
    assert heard.entry("added", 6, {"role": "assistant", "content": None}) == []
    [seeded] = heard.entry("added", 7, {"role": "assistant", "content": "Welcome back."})
    assert seeded["text"] == "Welcome back." and not seeded["cut"]


def test_the_conversation_reports_words_for_an_entry_not_yet_added() -> None:
    history = Conversation("call-1")
    seen: list[AgentEvent] = []
    history.subscribe(seen.append)
    entry = {"role": "assistant", "content": ""}
    history.speaking(entry, [("Hi", 480)])
    history.append(entry)
    assert [(e.kind, e.key) for e in seen] == [("speaking", id(entry)), ("added", id(entry))]
    assert seen[0].entry == {"role": "assistant", "words": [["Hi", 480]]}
    assert list(history) == [entry]  # speaking changes nothing in the conversation


def test_a_reply_generated_whole_then_flushed_unheard_never_shows_its_text() -> None:
    """The reply was generated (its entry added) but paused before its first frame and flushed:
    the page never sees the words the caller did not hear, and the line goes away."""
    heard = HeardTranscript()
    heard.speaking(REPLY, [("On", 100), ("Saturday", 300)])
    assert set(texts(heard.entry("added", REPLY, {"role": "assistant", "content": "On Saturday."}))) <= {""}
    cleared = heard.playout_cleared()
    assert texts(cleared) == [""]  # an empty text removes the line on the page
    removed = heard.entry("removed", REPLY, {"role": "assistant", "content": "On Saturday."})
    assert set(texts(removed)) <= {""}
