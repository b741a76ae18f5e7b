"""The sans-IO SIP user agent: bytes, time and actions in; bytes, timers and events out (aioquic-style).

Inputs: ``receive_datagram(data, source, now)`` (one datagram or one framed stream message), ``handle_timer(now)``,
``connection_made(peer)`` / ``connection_lost(peer)`` for stream connections, ``transport_error(peer, now)``.
Outputs: ``datagrams_to_send()``, ``get_timer()``, ``next_event()``. Nothing raises out of
``receive_datagram``: malformed input is answered 400 (or dropped when ``hide_inbound_port`` is set) and logged.
Where each input goes is `routing.InputRouter`'s business; this module is what the owner reads and does.

Calls are named by ``CallHandle`` (events carry it); the owner reads a call with ``state`` and ``call_info`` and
acts on it with the methods below, each taking the handle.

An action the call's state does not allow raises ``LocalProtocolError``; the few that are harmless no-ops
instead (hanging up twice, giving up on a call that has ended) are listed in ``call_table``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .answering import AnsweringCall
from .auth import DigestCheck, DigestCredentials, DigestServer
from .call import Call
from .call_state import CallInfo, CallState
from .call_table import CallSide
from .dialling import DiallingCall, first_hop
from .events import CallHandle
from .locality import Locality
from .offer_answer import MediaSession
from .registration import Registration, RegistrationSpec
from .routing import InputRouter
from .settings import SipSettings
from .transaction import Address, address_for
from .uri import NameAddr, Uri, parse_uri


class UserAgent(InputRouter):
    def __init__(
        self, settings: SipSettings, *, local_host: str, local_host_v6: str | None = None, secret: bytes | None = None
    ) -> None:
        """``local_host``: the address put in Via/Contact (``advertised_host`` wins); ``local_host_v6`` is used
        instead towards IPv6 peers on a dual-stack node."""
        super().__init__(settings, Locality(settings, local_host=local_host, local_host_v6=local_host_v6))
        self.digest = DigestServer(settings.realm, secret=secret)

    # ---- reading a call -------------------------------------------------------------------------------------

    def state(self, handle: CallHandle) -> CallState:
        """Any handle this agent issued: ENDED once the call is over."""
        return self._calls.state(handle)

    def call_info(self, handle: CallHandle) -> CallInfo:
        """A snapshot of a call that has not ended (an ended call's CallEnded event carries what outlives it)."""
        call = self._calls.live("call_info", handle)
        assert call is not None  # call_info is no harmless action: an ended handle raised
        return call.info()

    @property
    def active_calls(self) -> int:
        """Calls with a dialog (inbound from their INVITE on, outbound once answered)."""
        return len(self._calls)

    def carries_calls(self, peer: Address) -> bool:
        """Whether a call still signals through ``peer`` (a stream connection must then stay open)."""
        return self._calls.carry(peer)

    # ---- registrations ----------------------------------------------------------------------------------------

    def register(self, spec: RegistrationSpec, now: float) -> int:
        """Start registering (RFC 3261 §10) and keep the binding up until ``unregister``; RegistrationChanged
        events tell how it goes. Returns the registration's handle."""
        return self.registrations.register(spec, now)

    def unregister(self, handle: int, now: float) -> None:
        """Remove the binding (``Expires: 0``); again, or once unregistered, nothing."""
        self.registrations.unregister(handle, now)

    def registration(self, handle: int) -> Registration:
        """The registration's state as it is now (for reading only)."""
        return self.registrations[handle]

    # ---- actions: placing a call ----------------------------------------------------------------------------

    def invite(
        self,
        target: Uri | str,
        media: MediaSession,
        now: float,
        *,
        from_uri: Uri | str,
        display_name: str | None = None,
        to: NameAddr | None = None,
        destination: Address | None = None,
        alternatives: Sequence[Address] = (),
        transport: str = "UDP",
        credentials: DigestCredentials | None = None,
        headers: dict[str, str] | None = None,
    ) -> CallHandle:
        """Send an INVITE with our SDP offer to ``target`` (the Request-URI). ``to`` defaults to the target
        itself, ``destination`` (where the INVITE goes) to the host and port of the first outbound Route, else of
        the target. ``alternatives`` are where it goes next (RFC 3263 §4.3) when a target times out, cannot be
        reached or answers 503."""
        target_uri = parse_uri(target) if isinstance(target, str) else target
        from_addr = NameAddr(parse_uri(from_uri) if isinstance(from_uri, str) else from_uri, display_name)
        call = DiallingCall.dial(
            self.locality, self._calls.new_handle(), target=target_uri, from_addr=from_addr, to_addr=to,
            peer=destination or address_for(first_hop(target_uri, self.settings.outbound_routes), transport),
            alternatives=alternatives, media=media, credentials=credentials, headers=headers, now=now,
        )  # fmt: skip
        self._carry_out(call, now)
        return call.handle

    def cancel(self, handle: CallHandle, now: float) -> None:
        """CANCEL our INVITE (``hangup`` does this for an unanswered outbound call)."""
        self._act_on("cancel", handle, DiallingCall, now, lambda call: call.cancel(now))

    # ---- actions: answering a call --------------------------------------------------------------------------

    def authenticate(self, handle: CallHandle, username: str, password: str, realm: str | None = None) -> DigestCheck:
        """Check the INVITE's credentials (Authorization or Proxy-Authorization) for this user; an OK answer
        names the nonce use the caller must record as fresh before admitting the call (``sip.auth``)."""
        call = self._calls.side("authenticate", handle, AnsweringCall)
        assert call is not None  # authenticate is no harmless action: an ended handle raised
        header = call.invite.headers.get("Authorization") or call.invite.headers.get("Proxy-Authorization")
        return self.digest.verify(header, "INVITE", username, password, realm)

    def trying(self, handle: CallHandle, now: float) -> None:
        """100 Trying, only needed with ``hide_inbound_port``, once the call flow knows the caller."""
        self._act_on("trying", handle, AnsweringCall, now, lambda call: call.trying(now))

    def ring(self, handle: CallHandle, now: float) -> None:
        """180 Ringing."""
        self._act_on("ring", handle, AnsweringCall, now, lambda call: call.ring(now))

    def progress(self, handle: CallHandle, media: MediaSession, now: float) -> None:
        """183 with our SDP answer (early media); a bare 183 for a delayed offer."""
        self._act_on("progress", handle, AnsweringCall, now, lambda call: call.progress(media, now))

    def answer(
        self, handle: CallHandle, media: MediaSession, now: float, *, extra_headers: dict[str, str] | None = None
    ) -> None:
        """200 OK; CallAcked follows with the ACK. Raises NegotiationError (after a 488) when nothing fits."""
        self._act_on(
            "answer", handle, AnsweringCall, now, lambda call: call.answer(media, now, extra_headers=extra_headers)
        )

    def reject(
        self, handle: CallHandle, status: int, now: float, *, reason: str = "", headers: dict[str, str] | None = None
    ) -> None:
        """A final non-2xx response (486, 404, 603, ...)."""
        self._act_on(
            "reject", handle, AnsweringCall, now, lambda call: call.reject(status, now, reason=reason, headers=headers)
        )

    def challenge(
        self, handle: CallHandle, now: float, *, proxy: bool = False, stale: bool = False, realm: str | None = None
    ) -> None:
        """401 (407 with ``proxy``) with a digest challenge (in ``realm``, else ours); the authorised retry arrives
        as a new IncomingCall."""
        digest = self.digest
        self._act_on(
            "challenge",
            handle,
            AnsweringCall,
            now,
            lambda call: call.challenge(digest.challenge(stale=stale, realm=realm), now, proxy=proxy),
        )

    def drop(self, handle: CallHandle, now: float) -> None:
        """No answer at all (``hide_inbound_port``, for callers we do not know)."""
        self._act_on("drop", handle, AnsweringCall, now, lambda call: call.drop(now))

    # ---- actions: either side -------------------------------------------------------------------------------

    def hangup(self, handle: CallHandle, now: float, headers: Mapping[str, str] | None = None) -> None:
        """BYE (with ``headers`` added) once answered; before, CANCEL (outbound) or 480 (inbound)."""
        self._act("hangup", handle, now, lambda call: call.hangup(now, headers))

    def refer(
        self,
        handle: CallHandle,
        target: Uri | str,
        now: float,
        *,
        referred_by: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Blind transfer: REFER, then TransferProgress events from the 202 and the NOTIFYs."""
        self._act("refer", handle, now, lambda call: call.refer(target, now, referred_by=referred_by, headers=headers))

    def reinvite(self, handle: CallHandle, now: float, *, direction: str = "sendrecv") -> None:
        """Re-offer our media (``sendonly`` holds, ``sendrecv`` resumes); the outcome arrives as MediaUpdated."""
        self._act("reinvite", handle, now, lambda call: call.reinvite(now, direction=direction))

    def send_info(self, handle: CallHandle, digit: str, now: float, *, duration_ms: int = 250) -> None:
        """A DTMF digit as SIP INFO (application/dtmf-relay)."""
        self._act("send_info", handle, now, lambda call: call.send_info(digit, now, duration_ms=duration_ms))

    # ---- an action on its call ------------------------------------------------------------------------------

    def _act(self, action: str, handle: CallHandle, now: float, step: Callable[[Call], None]) -> None:
        if (call := self._calls.live(action, handle)) is not None:
            with self._driving(call, now):
                step(call)

    def _act_on(
        self, action: str, handle: CallHandle, side: type[CallSide], now: float, step: Callable[[CallSide], None]
    ) -> None:
        if (call := self._calls.side(action, handle, side)) is not None:
            with self._driving(call, now):
                step(call)
