"""The agent's side of the page's transcript, word by word as the caller hears it.

Theory of operation
-------------------
The AI agent reports each reply's words as they are queued for playout (an `AgentEvent` of
kind "speaking": the words with the playout mark of each word's end, keyed by the conversation
entry that will hold the reply), and later the entry itself ("added", or "updated" when a
barge-in cuts it to what was heard). A reply's entry enters the conversation only once the
whole reply is generated, so showing it would put words on the page before they are spoken.

`HeardTranscript` instead keeps one line per reply and moves it with the played-sample cursor
(`played`): a word joins its line when the cursor passes its end, i.e. when its last sample
has left for the caller. Once every word is heard and the entry is known, the line shows the
entry's text (the LLM's spelling and punctuation, which TTS word timings may not keep). When
playout is cleared (`playout_cleared`: a barge-in's flush, the hangup) the words not yet played
are dropped, and the entry that follows (the cut the agent keeps) is shown as interrupted.
Assistant entries with no words spoken (a seeded conversation) are shown whole at once.

Each change returns the messages for the page: `{"type": "transcript", "role": "agent",
"key", "text", "update", "speaking", "cut"}`; `key` names the line (a serial of this call),
`update` says the page already has it, `speaking` that more words are due, `cut` that the
reply was interrupted. Pure: no I/O, no clock; the front end sends what it returns.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, Any]


@dataclass
class _Line:
    serial: int
    words: deque[tuple[str, int]] = field(default_factory=deque)  # (text, end mark) not yet heard
    heard: list[str] = field(default_factory=list)
    entry_text: str | None = None  # the conversation entry's content, once it is there
    stopped: bool = False  # playout was cleared while this reply was still going
    cut: bool = False
    sent: tuple[str, bool, bool] | None = None  # (text, speaking, cut) last sent for this line

    @property
    def text(self) -> str:
        # A stopped line shows what was heard until the agent's cut arrives (the entry may hold
        # the whole reply, generated before a barge-in flushed its audio unheard).
        if self.entry_text is not None and (self.cut or not (self.words or self.stopped)):
            return self.entry_text
        return " ".join(self.heard)


class HeardTranscript:
    def __init__(self) -> None:
        self._serials = 0
        self._lines: dict[int, _Line] = {}  # by serial
        self._by_entry: dict[int, int] = {}  # entry key -> serial of the line it feeds now
        self._latest: _Line | None = None
        self._active: list[_Line] = []  # lines with words not yet heard

    def _new_line(self) -> _Line:
        self._serials += 1
        line = self._lines[self._serials] = _Line(self._serials)
        self._latest = line
        return line

    def speaking(self, key: int, words: list[tuple[str, int]]) -> list[Message]:
        """Words of the reply whose entry is `key` are queued, each with its end's playout mark."""
        serial = self._by_entry.get(key)
        line = self._lines.get(serial) if serial is not None else None
        # A line takes more words only while it is the reply being spoken: an entry already in
        # the conversation is complete, and a key seen before may be a new entry at a freed address.
        if line is None or line is not self._latest or line.entry_text is not None or line.stopped:
            line = self._new_line()
            self._by_entry[key] = line.serial
        if not line.words and words:
            self._active.append(line)
        line.words.extend(words)
        return []

    def played(self, cursor: int) -> list[Message]:
        """The played-sample cursor moved to `cursor`: the words it passed are heard."""
        if not self._active:
            return []
        out: list[Message] = []
        for line in list(self._active):
            moved = False
            while line.words and line.words[0][1] <= cursor:
                line.heard.append(line.words.popleft()[0])
                moved = True
            if not line.words:
                self._active.remove(line)
            if moved:
                out.extend(self._show(line))
        return out

    def playout_cleared(self) -> list[Message]:
        """Playout was dropped: what was not played will not be heard."""
        out: list[Message] = []
        for line in self._lines.values():
            if line.words or (line is self._latest and line.entry_text is None):
                line.stopped = True
            if line.words:
                line.words.clear()
                out.extend(self._show(line))
        self._active.clear()
        return out

    def entry(self, kind: str, key: int, entry: dict[str, Any]) -> list[Message]:
        """A conversation event ("added", "updated", "removed") for an entry of any role."""
        text = entry.get("content")
        if entry.get("role") != "assistant" or not isinstance(text, str):
            return []
        serial = self._by_entry.get(key)
        line = self._lines.get(serial) if serial is not None else None
        if line is None:
            if kind == "removed" or not text:
                return []
            line = self._new_line()  # said without words being spoken (a seeded conversation)
            self._by_entry[key] = line.serial
        if kind == "removed":
            text = ""
        line.cut = line.cut or line.stopped or kind != "added"
        line.entry_text = text
        return self._show(line)

    def _show(self, line: _Line) -> list[Message]:
        shown = (line.text, bool(line.words), line.cut)
        if shown == line.sent:
            return []
        message: Message = {"type": "transcript", "role": "agent", "key": line.serial, "text": shown[0]}
        message["update"] = line.sent is not None
        message["speaking"], message["cut"] = shown[1], shown[2]
        line.sent = shown
        return [message]
