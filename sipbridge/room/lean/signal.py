"""LiveKit's signalling for one participant: a websocket to livekit-server's `/rtc/v1` carrying `livekit.protocol`
SignalRequest and SignalResponse messages, and its keep-alive.

`/rtc/v1` is the single-peer-connection protocol: the join request travels in the URL, the server's first message
is the JoinResponse, and from then on we are always the side that offers. Keep-alive as LiveKit's SDKs do it: a
`ping_req` every `ping_interval` of the join response, and a connection that brought no message at all for
`ping_timeout` is dead (the server sends `pong_resp` to each ping, so a live one never stays silent that long).

A resume is the same request with `reconnect` and our participant ID: the server keeps a participant whose
websocket dropped while its peer connection lives, and answers such a request with a ReconnectResponse and goes on
with the same participant; when it no longer has that participant its first message is a `leave` asking for a
full reconnect (SignalLeft).
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from livekit.protocol import models, rtc

CLIENT_PROTOCOL = 16
"""The signalling protocol version we speak (single peer connection, MediaSectionsRequirement)."""
CLIENT_VERSION = "sipbridge-lean"


class SignalRefused(Exception):
    """The server could not be reached or did not let us in; the message says which, for a person to read.

    `token_refused`: the server turned the token down (HTTP 401 or 403): trying again with it is pointless."""

    def __init__(self, message: str, *, token_refused: bool = False) -> None:
        super().__init__(message)
        self.token_refused = token_refused


class SignalLeft(SignalRefused):
    """The server's first message was a `leave` (`leave.action` says whether to reconnect, `leave.reason` why)."""

    def __init__(self, leave: rtc.LeaveRequest) -> None:
        reason = models.DisconnectReason.Name(leave.reason)
        super().__init__(f"the server answered with a leave ({reason}, {rtc.LeaveRequest.Action.Name(leave.action)})")
        self.leave = leave


@dataclass(frozen=True)
class KeepAlive:
    """The keep-alive the server asked for in its JoinResponse (seconds)."""

    interval: float
    timeout: float

    @classmethod
    def of(cls, join: rtc.JoinResponse) -> KeepAlive:
        return cls(float(join.ping_interval or 5), float(join.ping_timeout or 15))


class SignalConnection:
    """An open signalling connection; `responses()` yields what the server sends after its first message."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
        keep_alive: KeepAlive,
        early: tuple[rtc.SignalResponse, ...] = (),
    ) -> None:
        self._session = session
        self._ws = ws
        self._keep_alive = keep_alive
        self._early = early
        self._rtt = 0
        self._closing = False
        self.lost_because = ""
        """Why the connection ended, when it was not our doing (empty while it lives, or after `close()`)."""

    @classmethod
    async def join(
        cls, ws_url: str, token: str, attributes: Mapping[str, str]
    ) -> tuple[SignalConnection, rtc.JoinResponse]:
        """Joins (as a new participant, with `attributes` added to the token's) and reads the JoinResponse;
        SignalRefused (with nothing left open) when that fails."""
        session, ws, first = await _connect(join_url(ws_url, attributes=attributes), token)
        which = first.WhichOneof("message")
        if which != "join":
            await session.close()
            raise SignalRefused(f"the server answered the join with {which!r}")
        return cls(session, ws, KeepAlive.of(first.join)), first.join

    @classmethod
    async def resume(
        cls, ws_url: str, token: str, participant_sid: str, reason: int, keep_alive: KeepAlive
    ) -> SignalConnection:
        """Takes up participant `participant_sid` again (its peer connection must still be up): SignalLeft when
        the server has no such participant any more, SignalRefused when it cannot be reached."""
        url = join_url(ws_url, resume_sid=participant_sid, reason=reason)
        session, ws, first = await _connect(url, token)
        # Anything but the ReconnectResponse first means the server took us back without one: keep the message.
        early = () if first.WhichOneof("message") == "reconnect" else (first,)
        return cls(session, ws, keep_alive, early)

    async def send(self, request: rtc.SignalRequest) -> None:
        """Sends one request; ConnectionError once the connection is closed."""
        await self._ws.send_bytes(request.SerializeToString())

    async def responses(self) -> AsyncIterator[rtc.SignalResponse]:
        """What the server sends, until the connection closes (see `lost_because`); keeps the connection alive."""
        for response in self._early:
            yield response
        self._early = ()
        loop_time = time.monotonic
        interval, timeout = self._keep_alive.interval, self._keep_alive.timeout
        next_ping = loop_time() + interval
        heard = loop_time()
        while True:
            now = loop_time()
            if now >= next_ping:
                if now - heard >= timeout:
                    self.lost_because = f"no message from the server for {now - heard:.0f} s"
                    await self._ws.close()
                    return
                await self._ping()
                next_ping = now + interval
            try:
                message = await self._ws.receive(timeout=next_ping - now)
            except TimeoutError:
                continue
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                if not self._closing:
                    self.lost_because = f"the signalling connection closed ({message.type.name})"
                return
            if message.type != aiohttp.WSMsgType.BINARY:
                continue
            heard = loop_time()
            response = rtc.SignalResponse.FromString(message.data)
            if response.WhichOneof("message") == "pong_resp":
                self._rtt = int(time.time() * 1000) - response.pong_resp.last_ping_timestamp
                continue
            yield response

    async def _ping(self) -> None:
        # a closed connection is seen by the read that follows
        with contextlib.suppress(ConnectionError):
            await self.send(rtc.SignalRequest(ping_req=rtc.Ping(timestamp=int(time.time() * 1000), rtt=self._rtt)))

    async def close(self) -> None:
        """Closes the websocket (a reader's `responses()` then ends without a `lost_because`)."""
        self._closing = True
        await self._ws.close()
        await self._session.close()


async def _connect(
    url: str, token: str
) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse, rtc.SignalResponse]:
    """Opens the websocket and reads the server's first message, which must not be a `leave` (SignalLeft)."""
    session = aiohttp.ClientSession()
    try:
        ws = await session.ws_connect(url, headers={"Authorization": f"Bearer {token}"})
        first = await ws.receive()
        if first.type != aiohttp.WSMsgType.BINARY:
            raise SignalRefused(f"the server closed the connection instead of answering the join ({first.type.name})")
        response = rtc.SignalResponse.FromString(first.data)
        if response.WhichOneof("message") == "leave":
            raise SignalLeft(response.leave)
        return session, ws, response
    except aiohttp.WSServerHandshakeError as exc:
        await session.close()
        raise SignalRefused(
            f"the server refused the join: HTTP {exc.status} {exc.message}", token_refused=exc.status in (401, 403)
        ) from exc
    except aiohttp.ClientConnectorError as exc:
        await session.close()
        code = exc.os_error.errno
        why = os.strerror(code) if code else str(exc.os_error)
        raise SignalRefused(f"cannot reach {exc.host}:{exc.port}: {why}") from exc
    except BaseException:
        await session.close()
        raise


def join_url(ws_url: str, *, attributes: Mapping[str, str] | None = None, resume_sid: str = "", reason: int = 0) -> str:
    """The `/rtc/v1` URL joining with our client info (the token goes in the Authorization header): as a new
    participant, with `attributes` added to the token's, or resuming participant `resume_sid` after `reason`
    (a ReconnectReason)."""
    request = rtc.JoinRequest(
        client_info=models.ClientInfo(sdk=models.ClientInfo.PYTHON, version=CLIENT_VERSION, protocol=CLIENT_PROTOCOL),
        connection_settings=rtc.ConnectionSettings(auto_subscribe=False),
        participant_attributes=dict(attributes or {}),
        reconnect=bool(resume_sid),
        participant_sid=resume_sid,
        reconnect_reason=reason,  # type: ignore[arg-type]
    )
    wrapped = rtc.WrappedJoinRequest(join_request=request.SerializeToString())
    parts = urlsplit(ws_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/") + "/rtc/v1"
    query = "join_request=" + base64.urlsafe_b64encode(wrapped.SerializeToString()).decode()
    return urlunsplit((scheme, parts.netloc, path, query, ""))
