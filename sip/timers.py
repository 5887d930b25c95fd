"""The endpoint's timer index: one heap of deadlines over its transactions and calls.

Theory of operation: ``get_timer()`` must return the earliest deadline of thousands of objects
(an INVITE server transaction or a call lives ~32 s, so at 100 calls/s there are thousands), and
``handle_timer(now)`` must find the due ones; scanning them all on every event-loop pass was the
SIP stack's bottleneck. So each ``Timed`` object reports every deadline it arms, and a
``TimerIndex`` keeps them in a heap of ``(at, seq, owner)`` entries, invalidated lazily: nothing
is removed when a deadline is cleared, moved later or its owner forgotten; an entry is checked
against ``owner.next_deadline()`` only when it reaches the top.

The invariant, which is why the top of the heap is the earliest deadline: every live owner (one
that its ``TimerTable`` still holds, by identity) whose ``next_deadline()`` is ``d`` has an entry
``at <= d``. It holds because
- a deadline can only become earlier, or appear, when it is armed, and arming reports it
  (``Timed._armed``: the transactions' ``_arm``, a call's ``pending_2xx``/``forget_at`` setters),
  as does entering a table (``TimerTable.__setitem__`` pushes the owner's current deadline);
- clearing a deadline or moving it later needs nothing: the old entry is still ``<= d``;
- an entry leaves the heap only in ``peek``/``pop_due``, which re-push the owner's deadline
  when it is live and has one; the owners ``handle_timer`` runs (which resend and back off
  without reporting, like ``Pending2xx.backoff``) are re-pushed by the endpoint after running.
So ``peek`` drops or re-files tops until one matches its owner's deadline, which is then the
minimum; each entry is popped once, so the work is amortised over the pushes, a few per
transaction or call, and the heap holds a few entries per live object.
"""

from __future__ import annotations

import heapq
from itertools import count
from typing import Any, TypeVar


class Timed:
    """An object with deadlines that an endpoint indexes (a transaction, a call)."""

    _timers: TimerTable[Any] | None = None  # the table holding us; reports go to its index
    _timer_key = ""  # our key in that table
    _timer_rank = 0  # where we sit in the table's insertion order (what a scan would visit)

    def next_deadline(self) -> float | None:
        raise NotImplementedError

    def _armed(self, at: float) -> None:
        """Call on every deadline set: it may be earlier than all the others."""
        table = self._timers
        if table is not None:
            table.index.push(at, self)


T = TypeVar("T", bound=Timed)


class TimerTable(dict[str, T]):
    """A dict of owners whose deadlines ``index`` tracks; its ``phase`` orders it among tables.

    Insert only with ``table[key] = owner`` (which indexes the owner) and remove with ``del``:
    ``update``/``setdefault`` would put an owner in unindexed. Removal by any means is safe,
    since an entry counts only while its owner is still in the table."""

    def __init__(self, index: TimerIndex, phase: int) -> None:
        super().__init__()
        self.index = index
        self.phase = phase

    def __setitem__(self, key: str, owner: T) -> None:
        old = self.get(key)
        if old is not None and old is not owner:
            old._timers = None
        # A dict keeps a replaced key where it was, so the new owner keeps the old one's rank.
        owner._timer_rank = old._timer_rank if old is not None else next(self.index.ranks)
        owner._timers, owner._timer_key = self, key
        super().__setitem__(key, owner)
        self.index.arm(owner)

    def __delitem__(self, key: str) -> None:
        self[key]._timers = None
        super().__delitem__(key)


class TimerIndex:
    """The heap of ``(at, seq, owner)`` entries over the tables made by ``table()``."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timed]] = []
        self._seq = count()  # ties broken by push order, never by comparing owners
        self.ranks = count()
        self._phases = count()

    def table(self) -> TimerTable[T]:
        """A new table; owners due together run in the order the tables were made."""
        return TimerTable(self, next(self._phases))

    def push(self, at: float, owner: Timed) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), owner))

    def arm(self, owner: Timed) -> None:
        """Index ``owner``'s current deadline, if it is live and has one."""
        if _live(owner) and (at := owner.next_deadline()) is not None:
            self.push(at, owner)

    def peek(self) -> float | None:
        """The earliest deadline of the live owners, or None; drops stale entries on the way."""
        heap = self._heap
        while heap:
            at, _, owner = heap[0]
            deadline = owner.next_deadline() if _live(owner) else None
            if deadline == at:
                return at
            heapq.heappop(heap)
            if deadline is not None:
                self.push(deadline, owner)  # moved later: file it where it now is
        return None

    def pop_due(self, now: float) -> list[Timed]:
        """The live owners with a deadline at or before ``now``, each once, in the order a scan
        of the tables would visit them (table by table, in insertion order). Their entries are
        gone: the caller runs them and then ``arm``s them again."""
        heap = self._heap
        due: dict[int, Timed] = {}
        while heap and heap[0][0] <= now:
            _, _, owner = heapq.heappop(heap)
            if id(owner) in due or not _live(owner) or (deadline := owner.next_deadline()) is None:
                continue
            if deadline <= now:
                due[id(owner)] = owner
            else:
                self.push(deadline, owner)
        return sorted(due.values(), key=_scan_order)


def _live(owner: Timed) -> bool:
    table = owner._timers
    return table is not None and table.get(owner._timer_key) is owner


def _scan_order(owner: Timed) -> tuple[int, int]:
    assert owner._timers is not None
    return owner._timers.phase, owner._timer_rank


__all__ = ["Timed", "TimerIndex", "TimerTable"]
