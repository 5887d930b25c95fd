"""Noise suppression with RNNoise: 20 ms frames in, 20 ms frames out, one fixed delay.

Theory of operation
-------------------
RNNoise (xiph, BSD-3-Clause) is a small recurrent network that estimates, every 10 ms, a gain
per frequency band and applies it to the spectrum: stationary and babble-like noise between
and under words is pulled down, speech is kept. It runs at 48 kHz on 480-sample frames only.
The library comes compiled, with its weights built in (nothing is downloaded at run time),
in the `pyrnnoise` wheel (Apache-2.0).

We load the wheel's shared library ourselves with ctypes rather than through
`import pyrnnoise`: the package's `__init__` imports its file-I/O helpers (audiolab, PyAV,
tqdm), about 0.4 s of imports, and its per-frame wrapper allocates and guesses the sample
format from the values. The C API used is three calls (`rnnoise_create`,
`rnnoise_process_frame`, `rnnoise_destroy`); `rnnoise_process_frame` works on float samples at
int16 scale, in place here, and returns its own voice probability for the frame.

`NoiseSuppressor(sample_rate)` is one stream's state (one per call leg, one direction):
``process(pcm)`` takes the next chunk (normally one 20 ms frame) and returns exactly as many
samples, denoised. Inside:

    pcm (rate) -> upsample to 48 kHz -> 480-sample frames -> RNNoise (+ floor) -> downsample -> FIFO -> out

The resamplers are `mscodecs.polyphase.PolyphaseStream`, the low-latency filter of the 16 kHz
listening view (kernel/taps.py), not soxr: soxr's stream works in large internal blocks, so fed
20 ms it returns nothing for several chunks and then a lump (16 -> 48 kHz at LQ and above: 20-
70 ms held back, 8 -> 48 kHz up to 166 ms), and its one low-delay mode (QQ) is cubic
interpolation with little anti-aliasing. The polyphase filter has a fixed delay of a few
samples and gives each chunk its share of output at once; both line up their output with their
input, so they add no delay of their own beyond what the FIFO absorbs.

Fixed latency: a 20 ms chunk is 960 samples at 48 kHz, two RNNoise frames, but the upsampler
holds back its few samples of delay, so at any moment up to 479 samples wait for a whole frame
and the output side runs short by up to that much (plus the downsampler's delay). The output
FIFO is therefore primed with exactly the largest shortfall that chunk size can ever produce
(`_shortfall`, found by running the two filters' sample counts for one second, after which the
pattern repeats), and every call pops exactly its input's length. RNNoise itself delays its
output by 960 samples at 48 kHz (20 ms, measured by cross-correlation on speech; the tests in
tests/unit/audio/test_denoise.py check the total at 8, 16 and 48 kHz). Total: `latency_samples`, at 16 kHz 320 + 183
= 503 samples (31.4 ms), at 8 kHz 160 + 103 = 263 (32.9 ms), at 48 kHz 960 (20 ms, nothing to
prime: 960 samples are two whole frames). That delay is the same for
every frame of the stream, so the audio is shifted, never stretched. Should a caller feed
chunks of another size and the FIFO run dry, zeros are put in front (latency grows, never
jitters back) and `latency_samples` says so.

Floor: RNNoise alone takes noise down by 40 dB and more, but after babble it also mutes the
first words of the next utterance (its recurrent state needs a moment to open) and it thins
espeak's formant speech, so Whisper loses more words than the noise cost it. So the input,
delayed by RNNoise's own 960 samples to line up, is mixed back in at `floor_db` (-20 dB): noise
goes down by 20 dB at most, and a wrongly muted word is still there for the recognizer.
Whisper tiny.en word recall, 6 espeak/Piper clips through PCMU (`python -m benchmarks.denoise
--n 3 --snrs 0 10 20`), raw / plain RNNoise / with the floor: babble at 10 dB SNR 0.73 / 0.23 /
0.56, white noise at 0 dB 0.50 / 0.46 / 0.64, clean 0.98 / 0.91 / 0.94. `floor_db=None` gives
plain RNNoise.

Cost: RNNoise from this wheel is compiled for plain x86-64 (SSE2, no AVX, the 0.2 model), so it
is the bulk of the work: about 1.3 ms of one core per 10 ms frame, so 2.6-2.8 ms per 20 ms frame
with the resamplers, some 14% of one core per denoised call on the 2-core development VM
(`python -m benchmarks.denoise`). Everything here is synchronous and sans-I/O apart from loading the
library once per process (`rnnoise_library`); building one costs about 50 ms the first time at
a rate (`_shortfall`, then cached) and several ms after (RNNoise's state), so the `denoise` verb
builds it on a worker thread.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import weakref
from pathlib import Path

import numpy as np
import numpy.typing as npt

from mediaserver.audio.frame import Pcm
from mscodecs.polyphase import PolyphaseStream

RNNOISE_RATE = 48_000
RNNOISE_FRAME = 480  # 10 ms at 48 kHz: the only frame size rnnoise_process_frame takes
RNNOISE_DELAY = 960  # samples at 48 kHz between a sample going in and coming out (measured)
# The most taken away. Of -inf, -20 and -14 dB tried, -20 gave Whisper the most words on white
# noise and nearly -14's on babble, and still puts -25 dBFS noise under the VAD's -40 dBFS floor.
FLOOR_DB = -20.0

Float32 = npt.NDArray[np.float32]
_FloatPtr = ctypes.POINTER(ctypes.c_float)


class DenoiseUnavailable(RuntimeError):
    """The RNNoise library cannot be loaded (the wheel is missing or its library does not load)."""


@functools.cache
def rnnoise_library() -> ctypes.CDLL:
    """Load the `pyrnnoise` wheel's librnnoise once per process (without importing the package)."""
    spec = importlib.util.find_spec("pyrnnoise")  # finds the package without running its __init__
    if spec is None or spec.origin is None:
        raise DenoiseUnavailable("the pyrnnoise wheel is not installed")
    path = Path(spec.origin).parent / "librnnoise.so"
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        raise DenoiseUnavailable(f"cannot load {path}: {exc}") from exc
    lib.rnnoise_create.argtypes = [ctypes.c_void_p]  # the model: NULL = the built-in weights
    lib.rnnoise_create.restype = ctypes.c_void_p
    lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
    lib.rnnoise_destroy.restype = None
    lib.rnnoise_get_frame_size.restype = ctypes.c_int
    lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, _FloatPtr, _FloatPtr]
    lib.rnnoise_process_frame.restype = ctypes.c_float
    if lib.rnnoise_get_frame_size() != RNNOISE_FRAME:
        raise DenoiseUnavailable(f"{path}: frame size {lib.rnnoise_get_frame_size()}, expected {RNNOISE_FRAME}")
    return lib


def _streams(rate: int) -> tuple[PolyphaseStream | None, PolyphaseStream | None]:
    if rate == RNNOISE_RATE:
        return None, None
    return PolyphaseStream(rate, RNNOISE_RATE), PolyphaseStream(RNNOISE_RATE, rate)


@functools.cache
def _shortfall(rate: int, chunk: int) -> int:
    """The most output samples the chain can owe after any chunk (chunks of `chunk` samples).

    Runs only the sample counts (zeros through the two filters, no RNNoise) for one second:
    with 20 ms chunks every chunk is 960 samples at 48 kHz, so after the filters' first output
    the pattern repeats every chunk, and one second covers any start-up transient."""
    up, down = _streams(rate)
    pending = produced = worst = 0
    zeros = np.zeros(chunk, dtype=np.float32)
    for n in range(1, max(2, -(-rate // chunk)) + 1):
        pending += len(up.process(zeros)) if up is not None else chunk
        whole, pending = pending - pending % RNNOISE_FRAME, pending % RNNOISE_FRAME
        out = np.zeros(whole, dtype=np.float32)
        produced += len(down.process(out)) if down is not None else whole
        worst = max(worst, n * chunk - produced)
    return worst


class NoiseSuppressor:
    """RNNoise on one stream at `sample_rate`: `process` returns as many samples as it is given.

    `floor_db`: the most it may take away (the input, delayed to line up, mixed back in at that
    level); None lets RNNoise's gains through untouched."""

    def __init__(self, sample_rate: int, *, floor_db: float | None = FLOOR_DB, chunk: int | None = None) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if floor_db is not None and floor_db >= 0:
            raise ValueError(f"floor_db must be negative (an attenuation), got {floor_db}")
        self.floor_db = floor_db
        self._dry_gain = 0.0 if floor_db is None else 10 ** (floor_db / 20)
        self._dry: Float32 = np.zeros(RNNOISE_DELAY, dtype=np.float32)  # input, RNNoise's delay behind
        self.sample_rate = sample_rate
        self.chunk = chunk or sample_rate // 50  # the 20 ms frame the FIFO is sized for
        lib = rnnoise_library()
        self._process_frame = lib.rnnoise_process_frame
        state = lib.rnnoise_create(None)
        if not state:
            raise DenoiseUnavailable("rnnoise_create returned NULL")
        self._state: int = state
        # The native state goes with this object, whether or not close() was called.
        self._release = weakref.finalize(self, lib.rnnoise_destroy, state)
        self._up, self._down = _streams(sample_rate)
        self._in48: Float32 = np.zeros(0, dtype=np.float32)
        self._frame: Float32 = np.zeros(RNNOISE_FRAME, dtype=np.float32)  # RNNoise works in place here
        self._frame_ptr = self._frame.ctypes.data_as(_FloatPtr)
        primed = _shortfall(sample_rate, self.chunk)
        self._out: Float32 = np.zeros(primed, dtype=np.float32)
        # RNNoise's delay in output samples: 960 * rate / 48000 (one 20 ms frame at any rate).
        self.latency_samples = primed + -(-RNNOISE_DELAY * sample_rate // RNNOISE_RATE)
        self.frames = 0  # RNNoise frames run
        self.speech_probability = 0.0  # RNNoise's own voice estimate for its last frame

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_samples / self.sample_rate

    @property
    def closed(self) -> bool:
        return not self._release.alive

    def process(self, pcm: Pcm) -> Pcm:
        """Denoise the next chunk; the result has the same length, `latency_samples` later."""
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError(f"expected mono int16 PCM, got {pcm.dtype} shape {pcm.shape}")
        if self.closed:
            raise RuntimeError("NoiseSuppressor.process() after close()")
        n = len(pcm)
        # RNNoise wants int16-scale floats; the polyphase filters are linear, so they take
        # that scale as well as [-1, 1).
        x = pcm.astype(np.float32)
        x48 = self._up.process(x) if self._up is not None else x
        buf = np.concatenate((self._in48, x48)) if len(self._in48) else x48
        whole = len(buf) - len(buf) % RNNOISE_FRAME
        denoised = np.empty(whole, dtype=np.float32)
        for start in range(0, whole, RNNOISE_FRAME):
            self._frame[:] = buf[start : start + RNNOISE_FRAME]
            self.speech_probability = float(self._process_frame(self._state, self._frame_ptr, self._frame_ptr))
            denoised[start : start + RNNOISE_FRAME] = self._frame
        self.frames += whole // RNNOISE_FRAME
        if self._dry_gain:
            dry = np.concatenate((self._dry, buf[:whole]))
            self._dry = dry[whole:]
            denoised = (1 - self._dry_gain) * denoised + self._dry_gain * dry[:whole]
        self._in48 = buf[whole:].copy()
        back = self._down.process(denoised) if self._down is not None else denoised
        out = np.concatenate((self._out, back)) if len(self._out) else back
        if len(out) < n:  # chunks other than the ones the FIFO was primed for: late, never early
            self.latency_samples += n - len(out)
            out = np.concatenate((np.zeros(n - len(out), dtype=np.float32), out))
        self._out = out[n:]
        result: Pcm = np.clip(np.rint(out[:n]), -32768, 32767).astype(np.int16)
        return result

    def close(self) -> None:
        """Free the native state now (the finalizer would at garbage collection)."""
        self._release()


__all__ = [
    "FLOOR_DB",
    "RNNOISE_DELAY",
    "RNNOISE_FRAME",
    "RNNOISE_RATE",
    "DenoiseUnavailable",
    "NoiseSuppressor",
    "rnnoise_library",
]
