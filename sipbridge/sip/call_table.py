"""The user agent's calls: by handle while they live, by dialog once they have one; and the rule for actions.

Handles count up from 1 and are never reused, so an issued handle with no call behind it names a call that has
ended.

**One rule for illegal actions**: an action the call's state does not allow raises ``LocalProtocolError``
(naming the action and the state) and changes nothing; so does an inbound-only action on an outbound call and
the reverse, and any action on a handle the agent never issued. The exceptions, kept as documented no-ops:

* On an *ended* call, the actions that only report progress or give up — ``trying``, ``ring``, ``progress``,
  ``reject``, ``challenge``, ``drop``, ``hangup``, ``cancel`` — do nothing: the peer's CANCEL or BYE, or a
  timeout, can always cross the owner's decision, and the CallEnded event already says what happened.
  ``answer``, ``authenticate``, ``refer``, ``reinvite``, ``send_info`` (and ``call_info``) raise: the owner
  must learn that they did not happen.
* ``hangup`` while our BYE is out, and ``cancel`` once a CANCEL is sent or waits for a provisional response, do
  nothing: giving up is idempotent.
"""

from __future__ import annotations

from typing import TypeVar

from .answering import AnsweringCall
from .call import Call
from .call_state import PRE_ANSWER, CallState
from .dialling import DiallingCall
from .errors import LocalProtocolError
from .events import CallHandle
from .message import Request
from .transaction import Address

HARMLESS_WHEN_ENDED = frozenset({"trying", "ring", "progress", "reject", "challenge", "drop", "hangup", "cancel"})
"""Actions that do nothing on an ended call instead of raising."""

CallSide = TypeVar("CallSide", AnsweringCall, DiallingCall)


class CallTable:
    def __init__(self) -> None:
        self._by_handle: dict[CallHandle, Call] = {}
        self._by_dialog: dict[tuple[str, str], Call] = {}  # (Call-ID, our tag)
        self._last_handle = 0

    def new_handle(self) -> CallHandle:
        self._last_handle += 1
        return CallHandle(self._last_handle)

    def settle(self, call: Call) -> None:
        """Record ``call`` as it is now: known by handle until it ends, by dialog while it has one."""
        key = (call.call_id, call.local_tag)
        if call.ended:
            self._by_handle.pop(call.handle, None)
            if self._by_dialog.get(key) is call:
                del self._by_dialog[key]
            return
        self._by_handle[call.handle] = call
        if call.dialog is not None:
            self._by_dialog[key] = call

    def state(self, handle: CallHandle) -> CallState:
        call = self._by_handle.get(handle)
        if call is not None:
            return call.state
        self._check_issued("state", handle)
        return CallState.ENDED

    def live(self, action: str, handle: CallHandle) -> Call | None:
        """The call ``handle`` names; None when it has ended and ``action`` is harmless then, else raises."""
        call = self._by_handle.get(handle)
        if call is not None:
            return call
        self._check_issued(action, handle)
        if action in HARMLESS_WHEN_ENDED:
            return None
        raise LocalProtocolError(action, CallState.ENDED)

    def side(self, action: str, handle: CallHandle, side: type[CallSide]) -> CallSide | None:
        """As ``live``, for an action only one side of a call has."""
        call = self.live(action, handle)
        if call is None or isinstance(call, side):
            return call
        raise LocalProtocolError(action, call.state, f"call {handle} is {'inbound' if call.inbound else 'outbound'}")

    def _check_issued(self, action: str, handle: CallHandle) -> None:
        if not 0 < handle <= self._last_handle:
            raise LocalProtocolError(action, "unknown", f"no call was given handle {handle}")

    # ---- by dialog ------------------------------------------------------------------------------------------

    def for_request(self, request: Request) -> Call | None:
        """The call an in-dialog request (or an ACK for a 2xx) belongs to."""
        return self._by_dialog.get((request.call_id, request.to.tag or ""))

    def by_dialog(self, call_id: str, local_tag: str) -> Call | None:
        return self._by_dialog.get((call_id, local_tag))

    def __len__(self) -> int:
        """Calls with a dialog (inbound from their INVITE on, outbound once answered)."""
        return len(self._by_dialog)

    def carry(self, peer: Address) -> bool:
        return any(call.peer == peer for call in self._by_dialog.values())

    def pending_invites(self) -> int:
        return sum(1 for call in self._by_dialog.values() if call.inbound and call.state in PRE_ANSWER)

    def is_merged(self, invite: Request) -> bool:
        """The same INVITE arriving again by another path (new branch) while the first is pending (§8.2.2.2)."""
        tag, seq = invite.from_.tag, invite.cseq.seq
        return any(
            call.inbound and call.call_id == invite.call_id and call.invite.from_.tag == tag
            and call.invite.cseq.seq == seq and call.invite.top_via.branch != invite.top_via.branch
            for call in self._by_dialog.values()
        )  # fmt: skip
