"""RFC 4028 session timers: the interval a call runs and which side refreshes it.

The refresher sends a refresh (UPDATE or re-INVITE) at half the interval; the other side, hearing none, sends BYE
shortly before the interval runs out. ``refresher`` in the headers names a role in the *current* transaction,
which is why the value we write depends on whether we are answering.
"""

from __future__ import annotations

from dataclasses import dataclass

from .headers import parse_header_params
from .message import Request, Response
from .syntax import bounded_int, is_digits

MAX_SESSION_INTERVAL = 86_400
"""The longest session interval we run (s): a day, so a timer is always a number a clock can hold."""


def session_interval(text: str) -> int | None:
    """A Session-Expires or Min-SE value in seconds, at most ``MAX_SESSION_INTERVAL`` (a longer one is lowered
    to it, as RFC 4028 §9 lets the answering side do); None when it is not a number."""
    if not is_digits(text):
        return None
    value = bounded_int(text, MAX_SESSION_INTERVAL)
    return MAX_SESSION_INTERVAL if value is None else value


@dataclass(frozen=True)
class SessionTimer:
    interval: int
    we_refresh: bool

    @classmethod
    def answering(cls, invite: Request) -> SessionTimer | None:
        """The timer an incoming INVITE asks for; the refresher defaults to the caller when it supports timers.
        (The agent already answered 422 to an interval below our Min-SE.)"""
        parsed = _parse(invite)
        if parsed is None:
            return None
        interval, params = parsed
        refresher = params.get("refresher")
        if refresher not in ("uac", "uas"):
            refresher = "uac" if "timer" in invite.headers.tokens("Supported") else "uas"
        return cls(interval, we_refresh=refresher == "uas")

    @classmethod
    def dialling(cls, response: Response) -> SessionTimer | None:
        """The timer the 2xx to our INVITE settled on; without a refresher named, we refresh."""
        parsed = _parse(response)
        if parsed is None:
            return None
        interval, params = parsed
        return cls(interval, we_refresh=params.get("refresher", "uac") == "uac")

    def session_expires(self, *, answering: bool) -> str:
        """The Session-Expires value for a request we send or a response we answer with."""
        role = "uas" if self.we_refresh == answering else "uac"
        return f"{self.interval};refresher={role}"

    def next_deadline(self, now: float) -> tuple[str, float]:
        """``("refresh", t)`` when we refresh, else ``("expire", t)``: when we give up on the peer's refresh."""
        if self.we_refresh:
            return "refresh", now + self.interval / 2
        return "expire", now + self.interval - min(32, self.interval / 3)


def _parse(message: Request | Response) -> tuple[int, dict[str, str | None]] | None:
    text = message.headers.get("Session-Expires")
    if not text:
        return None
    value, params = parse_header_params(text)
    interval = session_interval(value)
    return None if interval is None else (interval, params)
