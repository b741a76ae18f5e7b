"""RTP ports from the configured ``rtp_port`` range, handed out at random and always given back.

RTP uses even ports and, without rtcp-mux, RTCP the odd port above (RFC 3550 §11). A port is drawn at random from
the free pairs, so nobody can predict the next call's port from the last one's (docs/security.md); a port just
given back cools off behind the most recently released ones before it can be drawn again, so late packets of an
ended call do not land in a new one. A port another process holds is skipped by the session when it fails to bind.
"""

from __future__ import annotations

import random
from collections import deque

COOLING = 64
"""How many of the most recently released pairs wait before they can be drawn again (fewer in a small range)."""


class PortsExhausted(Exception):
    """Every RTP port of the range is in use: the call must be refused (SIP 503)."""


class PortAllocator:
    def __init__(self, start: int, end: int, *, rng: random.Random | None = None) -> None:
        first = start + (start % 2)
        pairs = list(range(first, end, 2))  # each even port with its odd neighbour inside the range
        if not pairs:
            raise ValueError(f"rtp_port range {start}-{end} holds no even/odd port pair")
        self._capacity = len(pairs)
        self._free = pairs
        self._cooling: deque[int] = deque()
        self._cooling_size = min(COOLING, self._capacity // 2)
        self._in_use: set[int] = set()
        self._rng = rng or random.SystemRandom()

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    @property
    def capacity(self) -> int:
        return self._capacity

    def allocate(self) -> int:
        """An even port whose pair is free; the caller must ``release`` it."""
        if self._free:
            index = self._rng.randrange(len(self._free))
            self._free[index], self._free[-1] = self._free[-1], self._free[index]
            port = self._free.pop()
        elif self._cooling:
            port = self._cooling.popleft()
        else:
            raise PortsExhausted(f"all {self._capacity} RTP port pairs are in use")
        self._in_use.add(port)
        return port

    def release(self, port: int) -> None:
        if port not in self._in_use:
            return
        self._in_use.discard(port)
        self._cooling.append(port)
        if len(self._cooling) > self._cooling_size:
            self._free.append(self._cooling.popleft())
