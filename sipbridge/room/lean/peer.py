"""The participant's one peer connection (aiortc): offers and answers, ICE candidates, the data channels.

On `/rtc/v1` we always offer. The first offer carries our published track (a sendonly m-section) and the data
channels; when the server has tracks for us it sends MediaSectionsRequirement, and we add that many recvonly
m-sections and offer again (it also asks with zero to make us re-offer when it changed a section). Offers are made
one at a time; a request arriving during a round makes one more round afterwards, and no round after the first
starts before the connection is up: aiortc connects ICE and DTLS in a task started by the first answer, which
walks the transceivers as it goes and fails on one whose m-section that answer does not have. Each applied answer
is read into the routes our RTP takes (`Negotiated`) and handed to `on_negotiated`.

ICE uses host candidates only (no STUN or TURN): the server is ICE-lite with its own candidates, and learns our
NAT-mapped address from our checks, as long as UDP reaches it. aiortc has no ICE restart: a failed connection
(see `failure`) is replaced by a new one in a new session, never restarted. When the signalling is resumed
while an offer waits for its answer, the offer goes out again (`resend_offer`): the first one or its answer may
have been lost with the old websocket.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from aiortc import MediaStreamTrack, RTCConfiguration, RTCDtlsTransport, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
from av.frame import Frame
from livekit.protocol import rtc

from sipbridge.room.lean.negotiated import Negotiated, read_negotiated

RELIABLE_CHANNEL = "_reliable"
LOSSY_CHANNEL = "_lossy"
ANSWER_TIMEOUT = 10.0
"""Seconds the server has to answer an offer before the connection is given up."""

SendOffer = Callable[[rtc.SessionDescription], Awaitable[None]]


class PublishedTrack(MediaStreamTrack):
    """Our track as aiortc's sender sees it: it gives the m-section its msid and SSRC, and never yields a frame
    (we send the RTP ourselves), so aiortc's encoding task waits forever at no cost."""

    kind = "audio"

    async def recv(self) -> Frame:
        await asyncio.Future()
        raise AssertionError("unreachable")


class PeerLink:
    def __init__(
        self,
        send_offer: SendOffer,
        on_negotiated: Callable[[Negotiated], None],
        on_data: Callable[[bytes], None],
        log: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._send_offer = send_offer
        self._on_negotiated = on_negotiated
        self._on_data = on_data
        self._log = log
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._reliable = self.pc.createDataChannel(RELIABLE_CHANNEL, ordered=True)
        lossy = self.pc.createDataChannel(LOSSY_CHANNEL, ordered=False, maxRetransmits=0)
        for channel in (self._reliable, lossy):
            channel.on("message", self._on_message)
        self.pc.on("datachannel", lambda channel: channel.on("message", self._on_message))
        self.track = PublishedTrack()
        self.sender = self.pc.addTransceiver(self.track, direction="sendonly").sender
        self._offer_id = 0
        self._offer: rtc.SessionDescription | None = None
        self._answer: asyncio.Future[rtc.SessionDescription] | None = None
        self._wanted = False
        self._receivers_wanted = 0
        self._negotiator: asyncio.Task[None] | None = None
        self._negotiated = asyncio.Event()
        self._early_candidates: list[str] = []
        self._up = asyncio.Event()
        self.failure: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        """Resolves, with why, when the connection failed: ICE or DTLS broke, or the server stopped answering."""
        self._closing = False
        self.pc.on("connectionstatechange", self._on_state)
        self._reliable.on("open", self._on_state)

    @property
    def dtls(self) -> RTCDtlsTransport:
        """The one (bundled) DTLS transport every m-section shares."""
        transport = self.sender.transport
        assert transport is not None
        return transport

    def renegotiate(self) -> None:
        """Makes another offer/answer round (now, or after the one under way)."""
        self._wanted = True
        if self._negotiator is None or self._negotiator.done():
            self._negotiator = asyncio.create_task(self._negotiate_while_wanted())

    def add_receivers(self, count: int) -> None:
        """Adds `count` recvonly audio m-sections (the server has tracks for us) to the next offer, and makes it."""
        self._receivers_wanted += count
        self.renegotiate()

    @property
    def up(self) -> bool:
        """Whether the connection is (still) up: negotiated, ICE and DTLS connected, not failed."""
        return self._up.is_set() and not self.failure.done()

    @property
    def data_open(self) -> bool:
        return self._reliable.readyState == "open"

    async def resend_offer(self) -> None:
        """Sends the offer that waits for its answer again, if one does."""
        if self._offer is not None and self._answer is not None and not self._answer.done():
            await self._send_offer(self._offer)

    async def wait_up(self) -> None:
        """Returns once the first answer is applied, ICE and DTLS are connected and the reliable channel is open."""
        await self._negotiated.wait()
        await self._up.wait()

    def on_answer(self, answer: rtc.SessionDescription) -> None:
        if self._answer is not None and not self._answer.done() and answer.id in (0, self._offer_id):
            self._answer.set_result(answer)

    async def add_candidate(self, candidate_init: str) -> None:
        """A server candidate, as LiveKit's trickle carries it (JSON with candidate, sdpMid, sdpMLineIndex)."""
        if self.pc.remoteDescription is None:
            self._early_candidates.append(candidate_init)
            return
        init = json.loads(candidate_init)
        line = init.get("candidate", "")
        if not line:
            return  # end of candidates
        candidate = candidate_from_sdp(line.split(":", 1)[1])
        candidate.sdpMid = init.get("sdpMid")
        candidate.sdpMLineIndex = init.get("sdpMLineIndex")
        await self.pc.addIceCandidate(candidate)

    def send_data(self, data: bytes) -> None:
        """Sends one data packet on the reliable channel; ConnectionError when it is not open."""
        if self._reliable.readyState != "open":
            raise ConnectionError("the reliable data channel is not open")
        self._reliable.send(data)

    async def close(self) -> None:
        self._closing = True
        if self._negotiator is not None:
            self._negotiator.cancel()
        await self.pc.close()

    async def _negotiate_while_wanted(self) -> None:
        try:
            while self._wanted:
                if self._negotiated.is_set():
                    await self._up.wait()
                self._wanted = False
                await self._negotiate()
        except Exception as exc:
            self._fail(f"negotiation failed: {exc!r}")

    async def _negotiate(self) -> None:
        for _ in range(self._receivers_wanted):
            self.pc.addTransceiver("audio", direction="recvonly")
        self._receivers_wanted = 0
        await self.pc.setLocalDescription(await self.pc.createOffer())
        local = self.pc.localDescription
        self._offer_id += 1
        self._answer = asyncio.get_running_loop().create_future()
        self._offer = rtc.SessionDescription(type="offer", sdp=local.sdp, id=self._offer_id)
        await self._send_offer(self._offer)
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                answer = await self._answer
        except TimeoutError:
            raise TimeoutError(f"no answer to offer {self._offer_id} within {ANSWER_TIMEOUT:.0f} s") from None
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        early, self._early_candidates = self._early_candidates, []
        for candidate in early:
            await self.add_candidate(candidate)
        self._on_negotiated(read_negotiated(local.sdp, answer.sdp, self.track.id, answer.mid_to_track_id))
        self._negotiated.set()

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and self._reliable.readyState == "open":
            self._up.set()
        elif state in ("failed", "closed") and not self._closing:
            self._fail(f"the peer connection {state}")

    def _fail(self, why: str) -> None:
        if not self.failure.done():
            self._log.warning("%s", why)
            self.failure.set_result(why)

    def _on_message(self, message: bytes | str) -> None:
        if isinstance(message, bytes):
            self._on_data(message)
