"""What the call flows need from the layers below them, as small Protocols.

A flow drives four things: the SIP leg of its call (the caller's, which it answers, or the callee's, which it
dials through a `Dialler`), a room participant, and an RTP session towards the phone. Production wires
`sipbridge.sip`, `sipbridge.room` and `sipbridge.media` behind these (`sipbridge.calls.wiring`); the unit tests
wire fakes, so a whole call runs without a socket. Only what the flows use is here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from sipbridge.media.codecs import Pcm
from sipbridge.media.stream import MediaStream, StreamConfig
from sipbridge.media.udp import Address as MediaAddress
from sipbridge.room import AudioSink, CallStatus, EndReason, LiveKitCredentials, ParticipantSpec, RpcHandler
from sipbridge.sip import Address, CallEnded, CallHandle, Event, MediaParams, MediaSession, TransferProgress
from sipbridge.sip.auth import DigestCheck, DigestCredentials
from sipbridge.sip.message import Request, Response
from sipbridge.sip.sdp import SessionDescription
from sipbridge.sip.uri import NameAddr, SipUri, Uri

# -- the SIP side ----------------------------------------------------------------------------------------------


class PhoneLeg(Protocol):
    """The SIP side of a call, whichever side dialled (`sipbridge.sip.SipLeg`)."""

    @property
    def call_id(self) -> str: ...

    @property
    def handle(self) -> CallHandle: ...

    @property
    def ended(self) -> bool: ...

    @property
    def peer_host(self) -> str:
        """Where the call's SIP comes from or goes to (RTP from that host's other ports may latch)."""
        ...

    def events(self) -> AsyncIterator[Event]:
        """Every event of the call in order, CallEnded last."""
        ...

    async def wait_ended(self) -> CallEnded: ...

    async def bye(self, headers: Mapping[str, str] | None = None) -> CallEnded:
        """Hang up (BYE once answered; before: CANCEL when we dialled, 480 when we were called)."""
        ...

    async def refer(self, target: Uri | str, *, headers: dict[str, str] | None = None) -> TransferProgress:
        """REFER to ``target``; the final TransferProgress. CallFailed when the call ends meanwhile."""
        ...


class CallerLeg(PhoneLeg, Protocol):
    """An INVITE we received and answer (`sipbridge.sip.InboundLeg`)."""

    @property
    def request(self) -> Request: ...

    @property
    def offer(self) -> SessionDescription | None: ...

    @property
    def source(self) -> Address: ...

    @property
    def registration(self) -> str | None:
        """The registration of ours the INVITE came over, if any."""
        ...

    @property
    def replaces(self) -> CallHandle | None:
        """The confirmed call this INVITE takes over (RFC 3891), if any."""
        ...

    @property
    def from_(self) -> NameAddr: ...

    def authenticate(self, username: str, password: str, realm: str | None = None) -> DigestCheck: ...

    def challenge(self, *, stale: bool = False, realm: str | None = None) -> None: ...

    def trying(self) -> None: ...

    def ring(self) -> None: ...

    def progress(self, offer_answer: MediaSession) -> None: ...

    async def answer(self, offer_answer: MediaSession, headers: dict[str, str] | None = None) -> MediaParams:
        """200 OK, then the ACK: what was negotiated. NegotiationError (488 sent) or CallFailed."""
        ...

    def reject(self, status: int = 486, reason: str = "", headers: dict[str, str] | None = None) -> None: ...

    def drop(self) -> None:
        """No answer at all (``hide_inbound_port``)."""
        ...


class CalleeLeg(PhoneLeg, Protocol):
    """An INVITE we sent (`sipbridge.sip.OutboundLeg`)."""

    @property
    def final_response(self) -> Response | None:
        """The final response our INVITE got (also after the end)."""
        ...

    async def wait_answered(self) -> MediaParams:
        """What was negotiated once the callee answered; CallFailed(status) on refusal, timeout or cancel."""
        ...


class Dialler(Protocol):
    """Places outbound calls (`sipbridge.sip.Endpoint`)."""

    @property
    def local_host(self) -> str: ...

    def next_hop(self, target: SipUri) -> Uri:
        """Where a new call to ``target`` is sent first (the first outbound Route, else ``target``)."""
        ...

    async def resolve(self, uri: SipUri, transport: str | None) -> list[Address]:
        """RFC 3263: where requests for ``uri`` go, best first."""
        ...

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
    ) -> CalleeLeg: ...


# -- the room side ---------------------------------------------------------------------------------------------


class CallParticipant(Protocol):
    """The call's participant in its room (`sipbridge.room.RoomParticipant`)."""

    @property
    def spec(self) -> ParticipantSpec: ...

    @property
    def sid(self) -> str: ...

    @property
    def attributes(self) -> Mapping[str, str]: ...

    @property
    def end_reason(self) -> EndReason | None: ...

    async def join(self) -> None:
        """RoomConnectError (nothing left allocated) on failure."""
        ...

    async def wait_admitted(self) -> None:
        """Returns once the room let the participant in (before `join()` returns: media still coming up)."""
        ...

    async def push(self, frame: Pcm) -> None: ...

    async def send_dtmf(self, digit: str) -> None: ...

    async def set_call_status(self, status: CallStatus) -> None: ...

    async def update_attributes(self, attributes: Mapping[str, str]) -> None: ...

    def register_rpc(self, method: str, handler: RpcHandler) -> None: ...

    async def wait_remote_audio(self) -> None:
        """Returns once someone's audio track is subscribed (the inbound call is answered then)."""
        ...

    async def wait_ended(self) -> EndReason: ...

    async def leave(self) -> None:
        """Idempotent; releases everything the participant holds."""
        ...


class ParticipantFactory(Protocol):
    """Makes (does not join) the participant of a call."""

    def __call__(
        self,
        spec: ParticipantSpec,
        sink: AudioSink,
        *,
        credentials: LiveKitCredentials,
        rate: int,
        krisp_enabled: bool,
        on_dtmf: Callable[[str], None],
        token: str,
        call_id: str,
    ) -> CallParticipant:
        """``rate``: of the frames pushed and of those handed to ``sink``; ``token``: a ready join token, or ""
        to mint one from ``credentials``."""
        ...


# -- the media side --------------------------------------------------------------------------------------------


class PhoneRtp(Protocol):
    """The call's RTP session towards the phone, on one port pair of the range (`sipbridge.media.RtpSession`)."""

    source: Callable[[], Pcm | None] | None
    """Audio towards the phone, one frame per call."""
    sink: Callable[[Pcm], None] | None
    """The phone's audio, one frame per call."""
    on_digit: Callable[[str], None] | None
    on_media_lost: Callable[[str], None] | None
    """Called once with why the phone's media stopped ("timeout", "error", "unresolvable")."""

    @property
    def local_port(self) -> int: ...

    @property
    def stream(self) -> MediaStream | None:
        """The current media's sans-IO stream (None before `start`): its counters are the call's quality."""
        ...

    def start(
        self,
        config: StreamConfig,
        remote: MediaAddress,
        remote_rtcp: MediaAddress | None = None,
        *,
        signalling_host: str | None = None,
        learn_any: bool = False,
    ) -> None:
        """Begin (or, after a re-INVITE, switch) media with what offer/answer settled."""
        ...

    def packet_counts(self) -> dict[tuple[str, str], int]: ...

    def send_digits(self, digits: str, duration_ms: int = 100) -> None:
        """Queue RFC 4733 digits towards the phone."""
        ...

    async def wait_digits_sent(self) -> None:
        """Returns once every queued digit has gone out (at once when none is queued)."""
        ...

    async def close(self) -> None:
        """Stop media and give the port back; idempotent."""
        ...


RtpOpener = Callable[[], Awaitable[PhoneRtp]]
"""Binds a free port pair of the range; raises `sipbridge.media.ports.PortsExhausted` when none is left."""
