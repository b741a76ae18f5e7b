"""A bare SIP client over UDP for tests that must write the wire themselves: replayed credentials, hand-made
headers, junk. It builds requests as text and reads responses with the bridge's own parser (only for reading:
what is sent is exactly the text the test wrote).

    async with RawSipClient(bridge_port) as sip:
        invite = sip.invite("+15105550100", "+13105550100")
        challenge = await sip.final(invite)              # e.g. 401 with WWW-Authenticate
        sip.ack(invite, challenge)
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from types import TracebackType

from sipbridge.sip.message import Request, Response, parse_message

SDP = (
    "v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
    "m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\na=sendrecv\r\n"
)


_ECHOED = ("Via", "From", "To", "Call-ID", "CSeq")


@dataclass
class SentRequest:
    method: str
    uri: str
    call_id: str
    cseq: int
    branch: str
    from_tag: str
    headers: dict[str, str] = field(default_factory=dict)
    """The headers the test added (e.g. Authorization)."""


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.responses: asyncio.Queue[Response] = asyncio.Queue()
        self.all: list[Response] = []
        self.requests: list[Request] = []
        """Requests the bridge sent us; a BYE is answered 200 (text written here, as a phone would)."""
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        try:
            message = parse_message(data)
        except Exception:
            return
        if isinstance(message, Response):
            self.all.append(message)
            self.responses.put_nowait(message)
        elif isinstance(message, Request):
            self.requests.append(message)
            if message.method == "BYE" and self.transport is not None:
                copied = [f"{name}: {value}" for name, value in message.headers if name in _ECHOED]
                ok = "\r\n".join(["SIP/2.0 200 OK", *copied, "Content-Length: 0", "", ""])
                self.transport.sendto(ok.encode(), addr)


class RawSipClient:
    def __init__(self, bridge_port: int, *, bridge_host: str = "127.0.0.1", host: str = "127.0.0.1") -> None:
        self.bridge = (bridge_host, bridge_port)
        self.host = host
        self.port = 0
        self.rtp_port = 40000
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol = _Protocol()
        self._pending: dict[tuple[str, int, str], list[Response]] = {}

    async def __aenter__(self) -> RawSipClient:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: self._protocol, local_addr=(self.host, 0))
        self.port = self._transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._transport is not None:
            self._transport.close()

    @property
    def received_requests(self) -> list[Request]:
        """Every request the bridge sent to this client (e.g. its BYE)."""
        return self._protocol.requests

    def send_raw(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.sendto(data, self.bridge)

    def request(
        self,
        method: str,
        uri: str,
        *,
        to_user: str,
        from_user: str,
        call_id: str | None = None,
        cseq: int = 1,
        from_tag: str | None = None,
        to_tag: str | None = None,
        branch: str | None = None,
        headers: dict[str, str] | None = None,
        body: str = "",
    ) -> SentRequest:
        sent = SentRequest(
            method=method,
            uri=uri,
            call_id=call_id or secrets.token_hex(8),
            cseq=cseq,
            branch=branch or "z9hG4bK" + secrets.token_hex(6),
            from_tag=from_tag or secrets.token_hex(4),
            headers=dict(headers or {}),
        )
        host = f"{self.host}:{self.port}"
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {host};branch={sent.branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{from_user}@{self.host}>;tag={sent.from_tag}",
            f"To: <sip:{to_user}@{self.bridge[0]}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {sent.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{from_user}@{host}>",
            *(f"{name}: {value}" for name, value in sent.headers.items()),
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        self.send_raw(("\r\n".join(lines) + "\r\n\r\n" + body).encode())
        return sent

    def invite(
        self,
        to_user: str,
        from_user: str,
        *,
        call_id: str | None = None,
        cseq: int = 1,
        from_tag: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SentRequest:
        uri = f"sip:{to_user}@{self.bridge[0]}:{self.bridge[1]}"
        body = SDP.format(host=self.host, rtp_port=self.rtp_port)
        return self.request(
            "INVITE", uri, to_user=to_user, from_user=from_user, call_id=call_id, cseq=cseq,
            from_tag=from_tag, headers=headers, body=body,
        )  # fmt: skip

    def ack(self, invite: SentRequest, final: Response) -> None:
        """ACK for a non-2xx final response (same branch, RFC 3261 §17.1.1.3)."""
        to_user = invite.uri.split(":", 1)[1].split("@", 1)[0]
        to_tag = final.to.tag
        self.request(
            "ACK", invite.uri, to_user=to_user, from_user="caller", call_id=invite.call_id, cseq=invite.cseq,
            from_tag=invite.from_tag, to_tag=to_tag, branch=invite.branch,
        )  # fmt: skip

    def cancel(self, invite: SentRequest) -> None:
        to_user = invite.uri.split(":", 1)[1].split("@", 1)[0]
        self.request(
            "CANCEL", invite.uri, to_user=to_user, from_user="caller", call_id=invite.call_id,
            cseq=invite.cseq, from_tag=invite.from_tag, branch=invite.branch,
        )  # fmt: skip

    async def next_response(self, request: SentRequest, within: float = 20.0) -> Response:
        """The next response to `request` (matched by Call-ID, CSeq and method), provisional or final."""
        key = (request.call_id, request.cseq, request.method)
        queued = self._pending.setdefault(key, [])

        async def wait() -> Response:
            while not queued:
                response = await self._protocol.responses.get()
                self._pending.setdefault((response.call_id, response.cseq.seq, response.cseq.method), []).append(
                    response
                )
            return queued.pop(0)

        return await asyncio.wait_for(wait(), within)

    async def final(self, request: SentRequest, within: float = 20.0) -> Response:
        """The first final response to `request`, skipping provisional ones."""
        while True:
            response = await self.next_response(request, within)
            if response.status >= 200:
                return response

    async def first_after_trying(self, request: SentRequest, within: float = 20.0) -> Response:
        """The first response other than 100 Trying: 18x (the call goes on) or a final answer."""
        while True:
            response = await self.next_response(request, within)
            if response.status != 100:
                return response
