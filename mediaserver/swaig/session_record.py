"""What the SWAIG runner reads of the live `ai` session: its record of the call, and its voice.

Theory of operation: webhook and hook bodies carry the conversation (`call_log`,
`raw_call_log`), the script's variables and call (`SWMLVars`, `SWMLCall`); the post-prompt body
adds the call and AI dates and the per-response `times`. Only the session knows these, and
fillers and `wait_file` need its voice while a function runs. The `ai` session implements
`SessionRecord` (agents/ai/control_surface.py) and is the `AiControl` the runner's `start(control)`
receives; the runner takes it from there (`isinstance`, a runtime-checkable Protocol), so the
seam's `ToolRunner` stays as it is. A control without it (the sidecar's) leaves the logs empty
and the fillers silent, which is what an observer that never speaks should do.

`speak` and `play_file` return when the audio has played (or could not be played);
`play_file` plays `loops` times (0 = until cancelled); cancelling the task stops the audio at
once. Neither raises for bad input: the session logs it on the call and returns.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["SessionRecord"]


@runtime_checkable
class SessionRecord(Protocol):
    def call_log(self) -> list[dict[str, Any]]:
        """The conversation as the LLM holds it now, each entry with its `timestamp` (epoch µs)."""
        ...

    def raw_call_log(self) -> list[dict[str, Any]]:
        """Everything said since the AI began, nothing cut or reset."""
        ...

    def swml_vars(self) -> dict[str, Any]:
        """The script's variables (live: later changes show in later bodies)."""
        ...

    def swml_call(self) -> dict[str, Any]:
        """The script's `call` object, as the SWML fetch sent it."""
        ...

    def dates_us(self) -> dict[str, int]:
        """call_start_date, call_answer_date, ai_start_date, ai_end_date, call_end_date (epoch µs)."""
        ...

    def response_times(self) -> list[dict[str, Any]]:
        """The post-prompt `times`: one entry per agent response."""
        ...

    async def speak(self, text: str) -> None:
        """Say `text` now (a filler: not part of what the LLM said); return when it has played."""
        ...

    async def play_file(self, url: str, loops: int) -> None:
        """Play the audio at `url` `loops` times (0: until cancelled); return when done."""
        ...
