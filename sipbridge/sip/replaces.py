"""RFC 3891 ``Replaces``: which of our dialogs an INVITE asks to take over, or the response that refuses it.

The recipient compares the header's ``to-tag`` with its own tag and ``from-tag`` with the peer's (§3). Only a
confirmed dialog can be replaced here: an early one is not ours to hand over (481), ``early-only`` on a confirmed one
is 486, one whose BYE is out is 603.
"""

from __future__ import annotations

from dataclasses import dataclass

from .call import Call
from .call_state import CallState
from .errors import SipParseError
from .headers import parse_header_params
from .message import Request


@dataclass(frozen=True)
class ReplacesTarget:
    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool


def parse_replaces(invite: Request) -> ReplacesTarget | None:
    """The dialog an INVITE's Replaces header names, None without one; SipParseError (400) when malformed."""
    values = invite.headers.get_all("Replaces")
    if not values:
        return None
    if len(values) > 1:
        raise SipParseError("more than one Replaces header")
    call_id, params = parse_header_params(values[0])
    to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
    if not call_id or not to_tag or not from_tag:
        raise SipParseError("Replaces needs a Call-ID, to-tag and from-tag")
    return ReplacesTarget(call_id, to_tag, from_tag, "early-only" in params)


def refusal_status(target: ReplacesTarget, call: Call | None) -> int | None:
    """The status refusing to replace ``call`` (the dialog found for ``target``), or None when it may be."""
    if call is None or call.dialog is None or call.dialog.remote_tag != target.from_tag:
        return 481
    if call.state in (CallState.CLOSING, CallState.ENDED):
        return 603
    if call.state is not CallState.CONFIRMED:
        return 481
    return 486 if target.early_only else None
