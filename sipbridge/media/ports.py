"""RTP ports from the configured ``rtp_port`` range, handed out round-robin and always given back.

RTP uses even ports and, without rtcp-mux, RTCP the odd port above (RFC 3550 §11). Round-robin (rather than
lowest-free) keeps a port that was just released out of use for a while, so late packets of an ended call do
not land in a new one. A port another process holds is skipped by the session when it fails to bind.
"""

from __future__ import annotations


class PortsExhausted(Exception):
    """Every RTP port of the range is in use: the call must be refused (SIP 503)."""


class PortAllocator:
    def __init__(self, start: int, end: int) -> None:
        first = start + (start % 2)
        self._pairs = list(range(first, end, 2))  # each even port with its odd neighbour inside the range
        if not self._pairs:
            raise ValueError(f"rtp_port range {start}-{end} holds no even/odd port pair")
        self._in_use: set[int] = set()
        self._cursor = 0

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    @property
    def capacity(self) -> int:
        return len(self._pairs)

    def allocate(self) -> int:
        """An even port whose pair is free; the caller must ``release`` it."""
        for _ in range(len(self._pairs)):
            port = self._pairs[self._cursor]
            self._cursor = (self._cursor + 1) % len(self._pairs)
            if port not in self._in_use:
                self._in_use.add(port)
                return port
        raise PortsExhausted(f"all {len(self._pairs)} RTP port pairs are in use")

    def release(self, port: int) -> None:
        self._in_use.discard(port)
