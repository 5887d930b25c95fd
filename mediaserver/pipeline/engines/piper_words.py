"""Word timings from Piper's phoneme alignments (pure; no model needed to test it).

Theory of operation: Piper gives, per sentence, every phoneme with the number of output samples
it covers (`Phone(phoneme, start, end)`, 256-sample resolution), including '^' (start), '$'
(end), ' ' (word gaps) and punctuation (pauses). espeak separates words with ' ', so splitting
the phonemes at ' ' usually yields one group per written word; a word then starts at its first
phoneme and ends after its last voiced one (the pause of a following ',' or '.' is excluded).

espeak does not always keep words apart: it merges function words ("that the" -> `ðætðə`,
"to be" -> `təbi`) and expands numbers into several words ("3.5" -> three point five). When the
group count differs from the word count, each written word is phonemized on its own (the
`phonemize` callback) and the sentence's voiced phonemes are shared out in proportion to those
counts (docs/costs.md §1: both methods put word ends within ~90 ms median of whisper's). Without any
alignment (`phones=None`), the same proportion is applied to the whole chunk.

Invariants of the result: one `WordTiming` per written word that contains a letter or digit
(punctuation-only tokens such as "-" are attached to the previous word), in order,
0 <= start <= end <= n_samples, and each start >= the previous end.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import NamedTuple

from mediaserver.pipeline.tts import WordTiming

__all__ = ["Phone", "is_voiced", "word_timings"]

_SILENT = {"^", "$", " ", "_"}
_WORDLIKE = re.compile(r"\w")


class Phone(NamedTuple):
    phoneme: str
    start: int  # samples, within the chunk
    end: int


def is_voiced(phoneme: str) -> bool:
    """Part of a word (stress and length marks included), not a gap, BOS/EOS or punctuation."""
    if phoneme in _SILENT:
        return False
    # IPA letters and modifiers (ˈ ː) are letters (L*); punctuation and symbols are pauses.
    return any(unicodedata.category(ch)[0] in "LMN" for ch in phoneme)


def _written_words(sentence: str) -> list[str]:
    words: list[str] = []
    for token in sentence.split():
        if _WORDLIKE.search(token) or not words:
            words.append(token)
        else:
            words[-1] = f"{words[-1]} {token}"
    return [w for w in words if _WORDLIKE.search(w)]


def word_timings(
    sentence: str,
    phones: list[Phone] | None,
    n_samples: int,
    phonemize: Callable[[str], list[str]],
) -> tuple[WordTiming, ...]:
    words = _written_words(sentence)
    if not words or n_samples <= 0:
        return ()
    if phones is not None:
        groups = _groups(phones)
        if len(groups) == len(words):
            return tuple(
                WordTiming(word, min(g[0].start, n_samples), min(g[-1].end, n_samples))
                for word, g in zip(words, groups, strict=True)
            )
        voiced = [p for p in phones if is_voiced(p.phoneme)]
        if voiced:
            return _proportional(words, voiced, n_samples, phonemize)
    whole = [Phone("", round(i * n_samples / 100), round((i + 1) * n_samples / 100)) for i in range(100)]
    return _proportional(words, whole, n_samples, phonemize)


def _groups(phones: list[Phone]) -> list[list[Phone]]:
    groups: list[list[Phone]] = [[]]
    for phone in phones:
        if phone.phoneme == " ":
            groups.append([])
        elif is_voiced(phone.phoneme):
            groups[-1].append(phone)
    return [g for g in groups if g]


def _proportional(
    words: list[str], voiced: list[Phone], n_samples: int, phonemize: Callable[[str], list[str]]
) -> tuple[WordTiming, ...]:
    """Share `voiced` phones out over the words in proportion to each word's phoneme count."""
    counts = [max(1, sum(1 for p in phonemize(w) if is_voiced(p))) for w in words]
    total = sum(counts)
    out: list[WordTiming] = []
    done = 0
    first = 0
    for word, count in zip(words, counts, strict=True):
        done += count
        last = round(len(voiced) * done / total)  # one past this word's last phone
        if last <= first:  # rounding left this word no phone: a zero-width mark at the boundary
            at = voiced[min(first, len(voiced) - 1)].start if first < len(voiced) else voiced[-1].end
            out.append(WordTiming(word, min(at, n_samples), min(at, n_samples)))
            continue
        out.append(WordTiming(word, min(voiced[first].start, n_samples), min(voiced[last - 1].end, n_samples)))
        first = last
    return tuple(out)
