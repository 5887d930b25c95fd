"""The RTP port pool: even ports of a configured range, one per call, returned at teardown."""

from __future__ import annotations

from collections import deque

from mediaserver.errors import PortPoolExhausted


class PortPool:
    def __init__(self, port_min: int, port_max: int) -> None:
        first = port_min + (port_min % 2)  # RTP uses even ports (RFC 3550 §11)
        self._free: deque[int] = deque(range(first, port_max, 2))
        self._used: set[int] = set()
        self.size = len(self._free)

    def acquire(self) -> int:
        if not self._free:
            raise PortPoolExhausted(f"all {self.size} RTP ports are in use")
        port = self._free.popleft()
        self._used.add(port)
        return port

    def release(self, port: int) -> None:
        if port in self._used:
            self._used.remove(port)
            self._free.append(port)  # to the back: a late packet for an old call finds no new one

    @property
    def in_use(self) -> int:
        return len(self._used)

    def is_free(self, port: int) -> bool:
        return port in self._free
