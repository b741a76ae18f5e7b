"""Whose RTP a call takes and where it sends its own: the defence against RTP injection and hijack.

Offer/answer names the peer's media address; behind NAT the peer's packets come from another port (or, rarely,
another address) than its SDP says. A call must follow the peer there (symmetric RTP) without letting a stranger
who sprays the port range take the stream, so every source is ranked:

* ``EXACT``: the address the SDP named;
* ``HOST``: another port of the host the SDP named or the SIP came from (a NAT rewriting the port);
* ``ANY``: any other address, only with ``symmetric_rtp`` and only in the first seconds of the media
  (``LEARNING_WINDOW``), for NATs that rewrite the address too;
* ``NONE``: everyone else — their packets are dropped unread.

Before the first packet we send to the SDP address. The first valid packet from a ranked source latches the call
to that source; from then on only that source is heard and answered, except that a better-ranked source takes
over (the exact SDP address beats a NAT port). A call never re-latches to an equal or worse source mid-call; a
re-INVITE starts a new latch. Sans-IO: addresses and time in, decisions out.
"""

from __future__ import annotations

import enum

Address = tuple[str, int]

LEARNING_WINDOW = 5.0
"""Seconds after media starts during which, with ``symmetric_rtp``, any address may latch."""


class Rank(enum.IntEnum):
    NONE = 0
    ANY = 1
    HOST = 2
    EXACT = 3


class RtpLatch:
    def __init__(
        self, signalled: Address, now: float, *, signalling_host: str | None = None, learn_any: bool = False
    ) -> None:
        self.signalled = signalled
        self._hosts = {signalled[0]} | ({signalling_host} if signalling_host else set())
        self._learn_until = now + LEARNING_WINDOW if learn_any else None
        self.latched: Address | None = None
        self._latched_rank = Rank.NONE
        self.refused = 0
        """Datagrams dropped because of where they came from."""

    @property
    def destination(self) -> Address:
        """Where our packets go: the latched source, else the SDP address."""
        return self.latched or self.signalled

    def rank(self, source: Address, now: float) -> Rank:
        if source == self.signalled:
            return Rank.EXACT
        if source[0] in self._hosts:
            return Rank.HOST
        if self._learn_until is not None and now <= self._learn_until:
            return Rank.ANY
        return Rank.NONE

    def admits(self, source: Address, now: float) -> bool:
        """Whether a packet from ``source`` may be used (checked before it is parsed)."""
        if source == self.latched:
            return True
        admitted = self.rank(source, now) > self._latched_rank
        if not admitted:
            self.refused += 1
        return admitted

    def confirm(self, source: Address, now: float) -> bool:
        """A valid packet came from an admitted ``source``: latch to it. True when the destination changed."""
        if source == self.latched:
            return False
        rank = self.rank(source, now)
        if rank <= self._latched_rank:
            return False
        changed = source != self.destination
        self.latched, self._latched_rank = source, rank
        return changed

    def admits_rtcp(self, source: Address) -> bool:
        """RTCP is taken from the host RTP is latched to (before that, the SDP's or the SIP's host)."""
        if self.latched is not None:
            return source[0] == self.latched[0]
        return source[0] in self._hosts
