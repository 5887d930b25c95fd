"""RTP inactivity timeout: ends a call whose peer has stopped sending media (issue 17).

Theory of operation: a call whose BYE was lost would otherwise live forever (its socket, its
tasks and its AI session with it). Carrier-facing servers end such calls when no RTP has come
for a while (FreeSWITCH `rtp_timeout_sec`, Asterisk `rtptimeout`); so do we, from `[rtp]
timeout_s`. While the peer holds the call (its SDP says sendonly, inactive or recvonly, or a
0.0.0.0 address) no RTP is owed, so `[rtp] hold_timeout_s` applies instead (0: none).

`MediaWatchdog` is pure: the call hands it every accepted datagram's arrival time (RTP or
RTCP, `heard`) and asks it once per 20 ms tick whether the silence has lasted too long
(`expired`). The tick's question costs one integer compare: the watchdog keeps the deadline of
the silence it last measured and only looks again (at the last arrival) once that deadline has
passed, so a packet costs one store and no deadline is moved per packet. The watch starts at
the first tick it is asked (the call's first tick after the answer), so a peer that never sends
RTP at all times out `timeout_s` after the answer; a change of hold state starts it afresh at
the next tick, since the peer that resumes owes no packets from before.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediaserver.clock import NS_PER_S

_NEVER_NS = 2**63 - 1  # a deadline that is never reached (the timeout in force is off)


@dataclass(frozen=True)
class MediaTimeouts:
    """`[rtp] timeout_s` and `hold_timeout_s` as values; 0 turns either off."""

    timeout_s: float = 60.0
    hold_timeout_s: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.timeout_s > 0 or self.hold_timeout_s > 0


class MediaWatchdog:
    """How long the peer has been silent, against the timeout in force (normal or on hold)."""

    __slots__ = ("_deadline_ns", "_last_ns", "_restart", "_since_ns", "held", "hold_timeout_ns", "timeout_ns")

    def __init__(self, timeouts: MediaTimeouts) -> None:
        self.timeout_ns = round(timeouts.timeout_s * NS_PER_S)
        self.hold_timeout_ns = round(timeouts.hold_timeout_s * NS_PER_S)
        self.held = False
        self._last_ns: int | None = None  # arrival of the peer's last accepted datagram
        self._since_ns = 0  # when the current watch started: the first tick, or the last hold change
        self._restart = True  # the next check starts the watch at its `now`
        self._deadline_ns = 0  # checked in full when now reaches it

    @property
    def limit_ns(self) -> int:
        """The silence allowed now; 0: no limit."""
        return self.hold_timeout_ns if self.held else self.timeout_ns

    @property
    def heard_any(self) -> bool:
        return self._last_ns is not None

    def heard(self, arrival_ns: int) -> None:
        """A datagram from the peer (RTP or RTCP) was accepted at arrival_ns."""
        self._last_ns = arrival_ns

    def hold(self, held: bool) -> None:
        """The peer put the call on hold (True) or took it off (False): the watch restarts."""
        if held != self.held:
            self.held = held
            self._restart = True
            self._deadline_ns = 0

    def silence_ns(self, now_ns: int) -> int:
        """How long the peer has been silent, counted from the start of the watch at the earliest."""
        last = self._last_ns
        return now_ns - (self._since_ns if last is None or last < self._since_ns else last)

    def expired(self, now_ns: int) -> bool:
        """True once the peer has been silent for the limit in force; asked every tick."""
        if now_ns < self._deadline_ns:
            return False
        if self._restart:
            self._restart = False
            self._since_ns = now_ns
        limit = self.limit_ns
        if limit <= 0:
            self._deadline_ns = _NEVER_NS  # until the hold state changes
            return False
        self._deadline_ns = now_ns - self.silence_ns(now_ns) + limit
        return now_ns >= self._deadline_ns
