"""Audio under the conversation: the `background_file` bed and `hold_on_process` music.

Theory of operation: both are layers of the session's one `BedMixer` (the one SWAIG
`playback_bg` and hold music use, `agents/ai/controls.py`), attached to the leg's playout as its
`bed`, so each layer advances one frame per tick under the agent's speech and alone in the gaps,
and the agent's own queue, cursor and word marks stay exact (barge-in is untouched).

* `background_file`: decoded once (a path, file:// or http(s)) when the AI starts and played
  from the first frame for the whole conversation: `background_file_loops` plays in all (None:
  until the AI ends), at `background_file_volume` dB. It is its own layer: `playback_bg` and
  hold music play beside it, and `stop_playback_bg` does not stop it.
* `hold_on_process`: while a SWAIG function runs (`processing()`, around each invocation), the
  `hold_music` file loops; it stops the moment the function returns. The music is decoded when
  the AI starts, so the first function is not kept waiting for the file.

A file that cannot be fetched or decoded is logged on the call (`ai_failure`, kind
`background_file` / `hold_on_process`) and the conversation goes on without it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote, urlparse

import aiohttp

from mediaserver.audio.frame import Pcm
from mediaserver.audio.mix import BedMixer
from mediaserver.events import AiBackgroundStarted, AiBackgroundStopped, AiFailure
from mediaserver.kernel.call import Call
from mediaserver.pipeline.media_files import MediaFileError, decode_audio_file

__all__ = ["BACKGROUND_FILE", "PROCESSING", "AudioBed"]

log = logging.getLogger(__name__)

BACKGROUND_FILE, PROCESSING = "background_file", "hold_on_process"  # layer names (and event purposes)
FETCH_TIMEOUT_S = 10.0


class AudioBed:
    def __init__(
        self,
        call: Call,
        mixer: BedMixer,
        *,
        blocking: Executor,
        start: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
    ) -> None:
        self.call = call
        self.mixer = mixer
        self.blocking = blocking
        self._start = start
        self._audio: dict[str, asyncio.Task[Pcm | None]] = {}
        self._hold_music = ""
        self._processing = 0  # functions running now (the music plays while any runs)

    # -- background_file -------------------------------------------------------------------------
    def background(self, url: str, *, loops: int | None, gain_db: float) -> None:
        """Start the conversation's bed as soon as the file is decoded."""
        self._start(self._play_background(url, loops, gain_db))

    async def _play_background(self, url: str, loops: int | None, gain_db: float) -> None:
        pcm = await self._load(url, BACKGROUND_FILE)
        if pcm is None:
            return
        self._attach()
        self.mixer.play(BACKGROUND_FILE, pcm, loops=loops, gain_db=gain_db)
        self.call.events.emit(AiBackgroundStarted(file=url, wait=False, purpose=BACKGROUND_FILE))

    # -- hold_on_process -------------------------------------------------------------------------
    def hold_music(self, url: str) -> None:
        """The music `processing()` plays; decoding starts now."""
        self._hold_music = url
        self._load(url, PROCESSING)

    @asynccontextmanager
    async def processing(self) -> AsyncIterator[None]:
        """Hold music under whatever plays while the body (a SWAIG function) runs."""
        self._processing += 1
        if self._processing == 1 and self._hold_music:
            self._start(self._play_hold())
        try:
            yield
        finally:
            self._processing -= 1
            if not self._processing and self.mixer.stop(PROCESSING):
                self.call.events.emit(AiBackgroundStopped(purpose=PROCESSING, reason="function_returned"))

    async def _play_hold(self) -> None:
        pcm = await self._load(self._hold_music, PROCESSING)
        if pcm is None or not self._processing or self.mixer.playing(PROCESSING):
            return  # the function returned while the music loaded
        self._attach()
        self.mixer.play(PROCESSING, pcm, loops=None)
        self.call.events.emit(AiBackgroundStarted(file=self._hold_music, wait=False, purpose=PROCESSING))

    # -- files -----------------------------------------------------------------------------------
    def _attach(self) -> None:
        playout = self.call.media.playout
        if playout.bed is None:
            playout.bed = self.mixer

    def _load(self, url: str, purpose: str) -> asyncio.Task[Pcm | None]:
        """One decode per file and session, shared by whoever asks (None: it failed, and was logged)."""
        if url not in self._audio:
            self._audio[url] = self._start(self._decode(url, purpose))
        return self._audio[url]

    async def _decode(self, url: str, purpose: str) -> Pcm | None:
        rate = self.call.media.sample_rate
        parsed = urlparse(url)
        try:
            source: str | bytes
            if parsed.scheme in ("http", "https"):
                timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
                async with aiohttp.ClientSession(trust_env=False) as http, http.get(url, timeout=timeout) as response:
                    if response.status != 200:
                        raise MediaFileError(f"{url}: HTTP {response.status}")
                    source = await response.read()
            else:
                source = unquote(parsed.path) if parsed.scheme == "file" else url
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.blocking, lambda: decode_audio_file(source, rate, name=url))
        except (MediaFileError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.call.events.emit(AiFailure(kind=purpose, error=str(exc)))
            return None
