"""RFC 3262 reliable provisional responses (100rel): the headers both sides read and write, and the UAC's rule for
which reliable provisional responses are new. The UAS's retransmission schedule lives in ``answering``."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .message import Request, Response
from .syntax import bounded_int

OPTION = "100rel"
MAX_RSEQ = 2**32 - 1
"""RFC 3262 §7.1: RSeq is a 32-bit number."""
MAX_CSEQ = 2**31 - 1
"""RFC 3261 §8.1.1.5: a CSeq number is below 2**31."""


def wanted_by(invite: Request) -> bool:
    """Whether the caller asks for (Require) or accepts (Supported) reliable provisional responses."""
    return OPTION in invite.headers.tokens("Require") or OPTION in invite.headers.tokens("Supported")


def first_rseq() -> int:
    """RFC 3262 §3: the first RSeq is chosen at random below 2**31."""
    return random.randint(1, 2**31 - 1)


def make_reliable(response: Response, rseq: int) -> None:
    response.headers.add("Require", OPTION)
    response.headers.add("RSeq", str(rseq))


def rseq_of(response: Response) -> int | None:
    """The RSeq of a reliable provisional response (Require: 100rel), None for an unreliable one."""
    if OPTION not in response.headers.tokens("Require"):
        return None
    return bounded_int((response.headers.get("RSeq") or "").strip(), MAX_RSEQ)


@dataclass(frozen=True)
class RAck:
    rseq: int
    cseq: int
    method: str

    def __str__(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"


def parse_rack(value: str | None) -> RAck | None:
    parts = (value or "").split()
    if len(parts) != 3:
        return None
    rseq, cseq = bounded_int(parts[0], MAX_RSEQ), bounded_int(parts[1], MAX_CSEQ)
    if rseq is None or cseq is None:
        return None
    return RAck(rseq, cseq, parts[2].upper())


class RSeqTracker:
    """The UAC side (RFC 3262 §4): per early dialog (remote tag), a reliable provisional is new when it is the
    first or numbered one above the last; a repeat is a retransmission and a gap one to wait for."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def is_new(self, remote_tag: str, rseq: int) -> bool:
        last = self._last.get(remote_tag)
        if last is not None and rseq != last + 1:
            return False
        self._last[remote_tag] = rseq
        return True
