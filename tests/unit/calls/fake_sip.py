"""The SIP side of the call flows without a SIP stack: a caller's leg, a callee's leg and a dialler that keep what
the flow sent (``sent``: "180", "200", "BYE"...) and let the test act as the phone (hang up, press keys, answer,
refuse, NOTIFY a transfer). They keep the contract of `sipbridge.sip.InboundLeg` / `OutboundLeg` / `Endpoint` as
`sipbridge.calls.seams` states it: a final response or a hang-up ends the leg, an action on an ended leg is
harmless, ``answer`` and ``refer`` raise CallFailed once it has ended."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

from changes import Changes

from sipbridge.sip import (
    Address,
    CallEnded,
    CallFailed,
    CallHandle,
    CallProgress,
    DtmfReceived,
    Event,
    MediaParams,
    MediaSession,
    MediaUpdated,
    NegotiationError,
    TransferProgress,
)
from sipbridge.sip.auth import DigestCheck, DigestCredentials, DigestVerdict, NonceUse
from sipbridge.sip.message import Request, Response, parse_message
from sipbridge.sip.sdp import SessionDescription, parse_sdp
from sipbridge.sip.uri import NameAddr, SipUri, Uri

PHONE_HOST = "198.51.100.7"
PHONE = Address("UDP", PHONE_HOST, 5060)
_handles = itertools.count(1)


def caller_sdp(codecs: Sequence[str] = ("PCMU",), port: int = 40000) -> bytes:
    """What a phone at PHONE_HOST offers."""
    return MediaSession(PHONE_HOST, port, codecs=list(codecs)).create_offer().to_bytes()


def invite(
    to: str = "+15105550100",
    from_: str = "+13105550100",
    *,
    sdp: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    call_id: str = "",
) -> Request:
    """An INVITE as the stack hands it over: parsed, with the phone's SDP offer."""
    body = caller_sdp() if sdp is None else sdp
    call_id = call_id or f"call-{next(_handles)}@{PHONE_HOST}"
    lines = [
        f"INVITE sip:{to}@bridge.test SIP/2.0",
        f"Via: SIP/2.0/UDP {PHONE_HOST}:5060;branch=z9hG4bK{call_id.split('@')[0]}",
        f"From: <sip:{from_}@carrier.test>;tag=from-{call_id.split('@')[0]}",
        f"To: <sip:{to}@bridge.test>",
        f"Call-ID: {call_id}",
        "CSeq: 1 INVITE",
        f"Contact: <sip:{from_}@{PHONE_HOST}:5060>",
        "Max-Forwards: 70",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
        "Content-Type: application/sdp",
        f"Content-Length: {len(body)}",
    ]
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    assert isinstance(message, Request)
    return message


class FakeLeg:
    """What both legs share: the events the test feeds, the ending, BYE and REFER."""

    def __init__(self, call_id: str, peer_host: str) -> None:
        self.handle = CallHandle(next(_handles))
        self.call_id = call_id
        self._peer_host = peer_host
        self.sent: list[str] = []
        """What the flow sent the phone, in order: status codes, "BYE", "CANCEL", "REFER <target>"."""
        self.bye_headers: Mapping[str, str] | None = None
        self.answered = False
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._ended: asyncio.Future[CallEnded] = asyncio.get_running_loop().create_future()
        self._transfer: asyncio.Future[TransferProgress] | None = None
        self.changes = Changes()

    @property
    def ended(self) -> bool:
        return self._ended.done()

    @property
    def peer_host(self) -> str:
        return self._peer_host

    async def events(self) -> AsyncIterator[Event]:
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, CallEnded):
                return

    async def wait_ended(self) -> CallEnded:
        return await asyncio.shield(self._ended)

    async def bye(self, headers: Mapping[str, str] | None = None) -> CallEnded:
        if not self.ended:
            self.bye_headers = headers
            self._send(self._hang_up_word())
            self._end("bye", by_remote=False)
        return await self.wait_ended()

    def _send(self, word: str) -> None:
        self.sent.append(word)
        self.changes.notify()

    async def until_sent(self, word: str) -> None:
        """Returns once the flow has sent ``word`` ("180", "200", "BYE"...)."""
        await self.changes.until(lambda: word in self.sent)

    def _hang_up_word(self) -> str:
        return "BYE"

    async def refer(self, target: Uri | str, *, headers: dict[str, str] | None = None) -> TransferProgress:
        if self.ended:
            raise CallFailed("no established call", None)
        self._send(f"REFER {target}")
        self._transfer = transfer = asyncio.get_running_loop().create_future()
        ended = asyncio.ensure_future(self.wait_ended())
        try:
            await asyncio.wait([transfer, ended], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if transfer.done():
            return transfer.result()
        raise CallFailed("ended during transfer", None)

    # -- the phone's side, for the tests --------------------------------------------------------------------------

    def hang_up(self, reason: str = "bye") -> None:
        """The phone hangs up (BYE), or cancels (``reason`` "cancel") before the answer."""
        self._end(reason, by_remote=True)

    def press(self, digits: str) -> None:
        """Keys pressed on the phone (RFC 4733 or INFO: the flow sees DtmfReceived either way)."""
        for digit in digits:
            self._events.put_nowait(DtmfReceived(self.handle, digit, 100))

    def notify(self, status: int) -> None:
        """The transferee's final NOTIFY (sipfrag ``status``) for our REFER."""
        assert self._transfer is not None, "no REFER sent"
        self._transfer.set_result(TransferProgress(self.handle, status, final=True))

    def update_media(self, params: MediaParams) -> None:
        """A re-INVITE changed the media (hold, a new address or codec)."""
        self._events.put_nowait(MediaUpdated(self.handle, params))

    def _end(self, reason: str, *, by_remote: bool, status: int | None = None) -> None:
        if not self.ended:
            ended = CallEnded(self.handle, reason, status, by_remote)
            self._ended.set_result(ended)
            self._events.put_nowait(ended)
            self.changes.notify()


class FakeCallerLeg(FakeLeg):
    """An INVITE from a phone. ``digest``: the credentials its Authorization answered with (checked by
    ``authenticate`` as the stack would), ``nonce``: the nonce use that answer makes."""

    def __init__(
        self,
        request: Request,
        *,
        source: Address = PHONE,
        digest: DigestCredentials | None = None,
        nonce: NonceUse | None = None,
        registration: str | None = None,
        replaces: CallHandle | None = None,
    ) -> None:
        super().__init__(request.call_id, source.host)
        self.request = request
        self.offer: SessionDescription | None = parse_sdp(request.body) if request.body else None
        self.source = source
        self.registration = registration
        self.replaces = replaces
        self.digest = digest
        self.nonce = nonce or NonceUse("nonce-1", 1, 1e12)
        self.reject_headers: dict[str, str] | None = None
        self.answer_headers: dict[str, str] | None = None
        self.challenge_realm: str | None = None
        self._negotiated_with: MediaSession | None = None

    @property
    def negotiated(self) -> MediaParams | None:
        """What our SDP settled with the phone, once the flow answered or sent early media."""
        return self._negotiated_with.current if self._negotiated_with is not None else None

    @property
    def from_(self) -> NameAddr:
        return self.request.from_

    def authenticate(self, username: str, password: str, realm: str | None = None) -> DigestCheck:
        if self.ended:
            raise CallFailed("already ended", None)
        if self.digest is None:
            return DigestCheck(DigestVerdict.MISSING)
        if (self.digest.username, self.digest.password) != (username, password):
            return DigestCheck(DigestVerdict.REJECTED)
        return DigestCheck(DigestVerdict.OK, self.nonce)

    def challenge(self, *, stale: bool = False, realm: str | None = None) -> None:
        self.challenge_realm = realm
        self._final("401 stale" if stale else "401")

    def trying(self) -> None:
        if not self.ended:
            self._send("100")

    def ring(self) -> None:
        if not self.ended:
            self._send("180")

    def progress(self, offer_answer: MediaSession) -> None:
        if not self.ended:
            self._negotiate(offer_answer)
            self._send("183")

    async def answer(self, offer_answer: MediaSession, headers: dict[str, str] | None = None) -> MediaParams:
        if self.ended:
            raise CallFailed("cancel", None)
        params = self._negotiate(offer_answer)
        self.answered = True
        self.answer_headers = headers
        self._send("200")
        return params

    def _negotiate(self, offer_answer: MediaSession) -> MediaParams:
        """Our SDP as the stack writes it: the answer to the INVITE's offer (NegotiationError after a 488), or
        for an INVITE without one, our offer, which the phone answers in its ACK."""
        if offer_answer.current is not None and offer_answer is self._negotiated_with:
            return offer_answer.current  # 183 then 200: the same answer
        self._negotiated_with = offer_answer
        if self.offer is None:
            far = MediaSession(PHONE_HOST, 40000, codecs=["PCMU"])
            return offer_answer.receive_answer(far.receive_offer(offer_answer.create_offer()))
        try:
            offer_answer.receive_offer(self.offer)
        except NegotiationError:
            self._final("488")
            raise
        assert offer_answer.current is not None
        return offer_answer.current

    def reject(self, status: int = 486, reason: str = "", headers: dict[str, str] | None = None) -> None:
        self.reject_headers = headers
        self._final(str(status))

    def drop(self) -> None:
        self._final("dropped")

    def _final(self, word: str) -> None:
        if not self.ended:
            self._send(word)
            self._end("rejected", by_remote=False)

    def _hang_up_word(self) -> str:
        return "BYE" if self.answered else "480"


@dataclass
class Dialled:
    """What the flow asked the dialler for."""

    target: str
    offer: SessionDescription
    from_uri: str
    to: NameAddr | None
    destination: Address | None
    alternatives: Sequence[Address]
    transport: str
    credentials: DigestCredentials | None
    headers: dict[str, str] = field(default_factory=dict)


class FakeCalleeLeg(FakeLeg):
    """An INVITE we sent; the test answers, rings or refuses it as the callee."""

    def __init__(self, dialled: Dialled, offer_answer: MediaSession, peer_host: str) -> None:
        super().__init__(f"out-{next(_handles)}@bridge.test", peer_host)
        self.dialled = dialled
        self._offer_answer = offer_answer
        self._answered: asyncio.Future[MediaParams] = asyncio.get_running_loop().create_future()
        self.final_response: Response | None = None

    async def wait_answered(self) -> MediaParams:
        return await asyncio.shield(self._answered)

    def _hang_up_word(self) -> str:
        return "BYE" if self.answered else "CANCEL"

    def _end(self, reason: str, *, by_remote: bool, status: int | None = None) -> None:
        if not self._answered.done():
            self._answered.set_exception(CallFailed(reason, status))
            self._answered.exception()
        super()._end(reason, by_remote=by_remote, status=status)

    # -- the callee's side, for the tests -----------------------------------------------------------------------

    def ring(self, *, early_media: bool = False) -> None:
        """180 Ringing, or 183 with an SDP answer (early media)."""
        params = self._settle() if early_media else None
        status, reason = (183, "Session Progress") if early_media else (180, "Ringing")
        self._events.put_nowait(CallProgress(self.handle, status, reason, params))

    def answer(self, headers: Mapping[str, str] | None = None) -> None:
        """200 OK (and our ACK)."""
        self.final_response = _response(200, "OK", headers)
        params = self._offer_answer.current or self._settle()
        self.answered = True
        self._answered.set_result(params)

    def refuse(self, status: int, reason: str) -> None:
        self.final_response = _response(status, reason, None)
        self._end("rejected", by_remote=True, status=status)

    def _settle(self) -> MediaParams:
        far = MediaSession(PHONE_HOST, 41000, codecs=["PCMU"])
        return self._offer_answer.receive_answer(far.receive_offer(self.dialled.offer))


def _response(status: int, reason: str, headers: Mapping[str, str] | None) -> Response:
    lines = [f"SIP/2.0 {status} {reason}", "Via: SIP/2.0/UDP bridge.test;branch=z9hG4bK1", "From: <sip:a@b>;tag=1",
             "To: <sip:c@d>;tag=2", "Call-ID: x", "CSeq: 1 INVITE",
             *(f"{name}: {value}" for name, value in (headers or {}).items()), "Content-Length: 0"]  # fmt: skip
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, Response)
    return message


class FakeDialler:
    """Places calls as `Endpoint.place_call` does (the INVITE offers the flow's SDP) and keeps them."""

    local_host = "192.0.2.1"

    def __init__(self) -> None:
        self.calls: list[FakeCalleeLeg] = []
        self.unresolvable: set[str] = set()
        self.changes = Changes()
        self._taken = 0

    async def until_dialled(self) -> FakeCalleeLeg:
        """The next call the flow places (the first one not yet taken by this)."""
        taken = self._taken
        await self.changes.until(lambda: len(self.calls) > taken)
        self._taken += 1
        return self.calls[taken]

    def next_hop(self, target: SipUri) -> Uri:
        return target

    async def resolve(self, uri: SipUri, transport: str | None) -> list[Address]:
        if uri.host in self.unresolvable:
            return []
        return [Address(transport or "UDP", uri.host, uri.port or 5060)]

    def place_call(
        self,
        target: Uri | str,
        offer_answer: MediaSession,
        *,
        from_uri: Uri | str,
        display_name: str | None = None,
        to: NameAddr | None = None,
        destination: Address | None = None,
        alternatives: Sequence[Address] = (),
        transport: str = "UDP",
        credentials: DigestCredentials | None = None,
        headers: dict[str, str] | None = None,
        client_cert: tuple[str, str] | None = None,
    ) -> FakeCalleeLeg:
        dialled = Dialled(
            str(target), offer_answer.create_offer(), str(from_uri), to, destination, alternatives, transport,
            credentials, dict(headers or {}),
        )  # fmt: skip
        leg = FakeCalleeLeg(dialled, offer_answer, destination.host if destination is not None else "")
        self.calls.append(leg)
        self.changes.notify()
        return leg
