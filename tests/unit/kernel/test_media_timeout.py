"""The RTP inactivity watchdog (kernel/media_timeout.py): pure, on nanosecond times passed in."""

from __future__ import annotations

from mediaserver.clock import NS_PER_MS, NS_PER_S
from mediaserver.kernel.media_timeout import MediaTimeouts, MediaWatchdog

TICK = 20 * NS_PER_MS


def first_expiry(watchdog: MediaWatchdog, start_ns: int, until_ns: int) -> int | None:
    """The first 20 ms tick from start_ns at which the watchdog says the silence is too long."""
    for now in range(start_ns, until_ns + 1, TICK):
        if watchdog.expired(now):
            return now
    return None


def test_silence_from_the_first_check_expires_exactly_at_the_timeout() -> None:
    watchdog = MediaWatchdog(MediaTimeouts(timeout_s=60))
    start = 5 * NS_PER_S
    assert first_expiry(watchdog, start, start + 70 * NS_PER_S) == start + 60 * NS_PER_S
    assert watchdog.silence_ns(start + 60 * NS_PER_S) == 60 * NS_PER_S
    assert not watchdog.heard_any


def test_each_datagram_restarts_the_silence() -> None:
    watchdog = MediaWatchdog(MediaTimeouts(timeout_s=2))
    assert not watchdog.expired(0)
    watchdog.heard(1_500 * NS_PER_MS)
    assert not watchdog.expired(2 * NS_PER_S)  # 0.5 s after the packet, 2 s after the start
    assert not watchdog.expired(3_480 * NS_PER_MS)
    assert watchdog.expired(3_500 * NS_PER_MS)  # 2 s after the packet
    assert watchdog.heard_any and watchdog.silence_ns(3_500 * NS_PER_MS) == 2 * NS_PER_S


def test_a_packet_from_before_the_watch_does_not_shorten_it() -> None:
    watchdog = MediaWatchdog(MediaTimeouts(timeout_s=1))
    watchdog.heard(0)  # early media, before the answer's first tick
    assert first_expiry(watchdog, 10 * NS_PER_S, 12 * NS_PER_S) == 11 * NS_PER_S


def test_hold_suspends_the_timeout_and_resume_restarts_it() -> None:
    watchdog = MediaWatchdog(MediaTimeouts(timeout_s=1))
    assert not watchdog.expired(0)
    watchdog.hold(True)
    assert first_expiry(watchdog, 500 * NS_PER_MS, 3600 * NS_PER_S) is None  # an hour on hold
    watchdog.hold(False)
    resumed = 3600 * NS_PER_S + TICK
    assert first_expiry(watchdog, resumed, resumed + 2 * NS_PER_S) == resumed + NS_PER_S


def test_hold_timeout_applies_while_held_from_the_hold() -> None:
    watchdog = MediaWatchdog(MediaTimeouts(timeout_s=60, hold_timeout_s=5))
    watchdog.heard(0)
    assert not watchdog.expired(0)
    watchdog.hold(True)
    held_at = 10 * NS_PER_S
    assert first_expiry(watchdog, held_at, held_at + 10 * NS_PER_S) == held_at + 5 * NS_PER_S
    assert watchdog.held and watchdog.limit_ns == 5 * NS_PER_S


def test_off_when_both_are_zero_and_hold_only_when_timeout_is_zero() -> None:
    assert not MediaTimeouts(0, 0).enabled
    watchdog = MediaWatchdog(MediaTimeouts(timeout_s=0, hold_timeout_s=3))
    assert first_expiry(watchdog, 0, 100 * NS_PER_S) is None
    watchdog.hold(True)
    assert first_expiry(watchdog, 100 * NS_PER_S, 110 * NS_PER_S) == 103 * NS_PER_S
