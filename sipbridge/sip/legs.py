"""One call's SIP leg on asyncio: ``InboundLeg`` for an INVITE we received, ``OutboundLeg`` for one we sent.

A leg names its call in the core by ``CallHandle`` and acts through the endpoint's `UserAgent`, each action run
by the endpoint at the current time (`LegHost.run`), which then sends and dispatches what the core produced:
events reach the leg by `SipLeg.deliver`. Actions that only send are plain methods; those that wait for the peer
are coroutines.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol, TypeVar

from .auth import DigestCheck
from .call_state import CallState
from .events import CallAcked, CallAnswered, CallEnded, CallHandle, Event, TransferProgress
from .message import Request, Response
from .offer_answer import MediaParams, MediaSession
from .sdp import SessionDescription
from .transaction import Address
from .uri import NameAddr, Uri
from .useragent import UserAgent

T = TypeVar("T")


class LegHost(Protocol):
    """What a leg needs of its endpoint."""

    def run(self, action: Callable[[float], T]) -> T:
        """Run one core action at the current time, then send what it produced and dispatch its events."""
        ...

    def transport_failure(self, peer: Address | None) -> str:
        """Why ``peer`` could not be reached, when the transport said so."""
        ...


class CallFailed(Exception):
    """The call ended before the awaited step (answer, ACK, transfer); ``status`` is the SIP status if any,
    ``detail`` what the transport said when the peer could not be reached (a refused TLS handshake, ...)."""

    def __init__(self, reason: str, status: int | None, detail: str = "") -> None:
        text = f"{reason} ({status})" if status else reason
        super().__init__(f"{text}: {detail}" if detail else text)
        self.reason = reason
        self.status = status
        self.detail = detail


class SipLeg:
    """Shared by inbound and outbound legs: events, hang-up, transfer, DTMF. Reads and acts through the
    endpoint's user agent by the call's handle. Actions that only send are plain methods; those that wait for
    the peer are coroutines."""

    def __init__(self, endpoint: LegHost, ua: UserAgent, handle: CallHandle) -> None:
        self._endpoint = endpoint
        self._ua = ua
        self.handle = handle
        info = self._ua.call_info(handle)
        self.call_id = info.call_id
        self._peer = info.peer
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._ended: asyncio.Future[CallEnded] = asyncio.get_running_loop().create_future()
        self._answered: asyncio.Future[MediaParams] = asyncio.get_running_loop().create_future()
        self._transfer: asyncio.Future[TransferProgress] | None = None

    @property
    def final_response(self) -> Response | None:
        """Outbound: the final response our INVITE got (its reason phrase and headers), also after the end."""
        if self._ended.done():
            return self._ended.result().final_response
        return self._ua.call_info(self.handle).final_response

    @property
    def peer_host(self) -> str:
        """The host this call's SIP comes from (inbound) or goes to (outbound: the target that took it)."""
        if not self.ended:
            self._peer = self._ua.call_info(self.handle).peer
        return self._peer.host

    @property
    def ended(self) -> bool:
        return self._ended.done()

    async def events(self) -> AsyncIterator[Event]:
        """Every event of this call in order; the iteration stops after CallEnded."""
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, CallEnded):
                return

    async def wait_ended(self) -> CallEnded:
        return await asyncio.shield(self._ended)

    async def bye(self, headers: Mapping[str, str] | None = None) -> CallEnded:
        """Hang up (BYE carrying ``headers``, or CANCEL/480 before an answer) and wait until the call is over."""
        self._endpoint.run(lambda now: self._ua.hangup(self.handle, now, headers))
        return await self.wait_ended()

    async def refer(
        self, target: Uri | str, *, referred_by: str | None = None, headers: dict[str, str] | None = None
    ) -> TransferProgress:
        """Blind transfer; returns the final TransferProgress (check ``.succeeded``). A peer that accepts with 202
        but never NOTIFYs keeps this waiting: bound it with ``asyncio.timeout``."""
        self._require_dialog()
        loop = asyncio.get_running_loop()
        self._transfer = loop.create_future()
        self._endpoint.run(
            lambda now: self._ua.refer(self.handle, target, now, referred_by=referred_by, headers=headers)
        )
        transfer = self._transfer
        ended = asyncio.ensure_future(asyncio.shield(self._ended))
        try:
            waiters: list[asyncio.Future[Any]] = [transfer, ended]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if transfer.done():
            return transfer.result()
        raise CallFailed("ended during transfer", None)

    def hold(self) -> None:
        """re-INVITE with ``sendonly``; the outcome arrives as MediaUpdated (direction ``sendonly``)."""
        self._require_dialog(confirmed=True)
        self._endpoint.run(lambda now: self._ua.reinvite(self.handle, now, direction="sendonly"))

    def unhold(self) -> None:
        """re-INVITE with ``sendrecv``; the outcome arrives as MediaUpdated."""
        self._require_dialog(confirmed=True)
        self._endpoint.run(lambda now: self._ua.reinvite(self.handle, now, direction="sendrecv"))

    def send_dtmf(self, digit: str, duration_ms: int = 250) -> None:
        """One digit by SIP INFO (application/dtmf-relay); RFC 4733 events are the media layer's."""
        self._require_dialog()
        self._endpoint.run(lambda now: self._ua.send_info(self.handle, digit, now, duration_ms=duration_ms))

    def _require_dialog(self, *, confirmed: bool = False) -> None:
        states = (CallState.CONFIRMED,) if confirmed else (CallState.CONFIRMED, CallState.ANSWERED)
        state = self._ua.state(self.handle)
        if state not in states:
            raise CallFailed(f"no established call (state {state})", None)

    def deliver(self, event: Event) -> None:
        self._events.put_nowait(event)
        if isinstance(event, (CallAcked, CallAnswered)) and not self._answered.done():
            if event.media is not None:
                self._answered.set_result(event.media)
            else:
                self._answered.set_exception(CallFailed("no media", None))
                self._answered.exception()
        elif isinstance(event, TransferProgress) and event.final and self._transfer and not self._transfer.done():
            self._transfer.set_result(event)
        elif isinstance(event, CallEnded):
            if not self._answered.done():
                detail = self._endpoint.transport_failure(event.peer) if event.reason == "unreachable" else ""
                self._answered.set_exception(CallFailed(event.reason, event.status, detail))
                self._answered.exception()  # consumed here so an unawaited call logs nothing
            if not self._ended.done():
                self._ended.set_result(event)


class InboundLeg(SipLeg):
    """The leg of an INVITE we received, handed to the incoming-call handler."""

    def __init__(self, endpoint: LegHost, ua: UserAgent, handle: CallHandle) -> None:
        super().__init__(endpoint, ua, handle)
        info = self._ua.call_info(handle)
        self.request: Request = info.invite
        """The parsed INVITE (headers for trunk matching, sip.h.* attributes)."""
        self.offer: SessionDescription | None = info.offer
        """The caller's SDP offer; None for a delayed offer (we offer in the 200, the answer comes in the ACK)."""
        self._registration = info.registration
        self.replaces: CallHandle | None = info.replaces
        """The confirmed call this INVITE asks to take over (RFC 3891 Replaces), if any."""

    @property
    def source(self) -> Address:
        """Where the INVITE came from (for trunk source-address matching)."""
        return self._peer

    @property
    def registration(self) -> str | None:
        """The name of our registration the INVITE came over (its registrar sent it to our Contact), if any."""
        return self._registration

    @property
    def from_(self) -> NameAddr:
        return self.request.from_

    @property
    def to(self) -> NameAddr:
        return self.request.to

    def authenticate(self, username: str, password: str, realm: str | None = None) -> DigestCheck:
        """The digest verdict on the INVITE's credentials (in ``realm``, else the stack's); CallFailed once the
        caller has gone."""
        if self.ended:
            raise CallFailed(self._ended.result().reason, None)
        return self._ua.authenticate(self.handle, username, password, realm)

    def challenge(self, *, proxy: bool = False, stale: bool = False, realm: str | None = None) -> None:
        """401/407 (in ``realm``, else the stack's); the authorised retry arrives as a new InboundLeg."""
        self._endpoint.run(lambda now: self._ua.challenge(self.handle, now, proxy=proxy, stale=stale, realm=realm))

    def trying(self) -> None:
        """100 Trying; only needed with hide_inbound_port, once the caller passed trunk matching."""
        self._endpoint.run(lambda now: self._ua.trying(self.handle, now))

    def ring(self) -> None:
        self._endpoint.run(lambda now: self._ua.ring(self.handle, now))

    def progress(self, offer_answer: MediaSession) -> None:
        """183 with our SDP answer (early media)."""
        self._endpoint.run(lambda now: self._ua.progress(self.handle, offer_answer, now))

    async def answer(self, offer_answer: MediaSession, headers: dict[str, str] | None = None) -> MediaParams:
        """200 OK, then wait for the ACK. Raises NegotiationError (488 sent) or CallFailed."""
        if self.ended:
            raise CallFailed(self._ended.result().reason, None)  # e.g. CANCELled while we set up the room
        self._endpoint.run(lambda now: self._ua.answer(self.handle, offer_answer, now, extra_headers=headers))
        return await asyncio.shield(self._answered)

    def reject(self, status: int = 486, reason: str = "", headers: dict[str, str] | None = None) -> None:
        self._endpoint.run(lambda now: self._ua.reject(self.handle, status, now, reason=reason, headers=headers))

    def drop(self) -> None:
        """No answer at all (hide_inbound_port for callers we do not know)."""
        self._endpoint.run(lambda now: self._ua.drop(self.handle, now))


class OutboundLeg(SipLeg):
    """The leg of an INVITE we sent (`Endpoint.place_call`)."""

    async def wait_answered(self) -> MediaParams:
        """The negotiated media once the callee answered; CallFailed(status) on rejection, timeout or cancel."""
        return await asyncio.shield(self._answered)
