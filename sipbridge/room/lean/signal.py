"""LiveKit's signalling for one participant: a websocket to livekit-server's `/rtc/v1` carrying `livekit.protocol`
SignalRequest and SignalResponse messages, and its keep-alive.

`/rtc/v1` is the single-peer-connection protocol: the join request travels in the URL, the server's first message
is the JoinResponse, and from then on we are always the side that offers. Keep-alive as LiveKit's SDKs do it: a
`ping_req` every `ping_interval` of the join response, and a connection that brought no message at all for
`ping_timeout` is dead (the server sends `pong_resp` to each ping, so a live one never stays silent that long).
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from livekit.protocol import models, rtc

CLIENT_PROTOCOL = 16
"""The signalling protocol version we speak (single peer connection, MediaSectionsRequirement)."""
CLIENT_VERSION = "sipbridge-lean"


class SignalRefused(Exception):
    """The server could not be reached or did not let us in; the message says which, for a person to read."""


class SignalConnection:
    """An open signalling connection: `join` is the server's JoinResponse; `responses()` yields what follows."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, join: rtc.JoinResponse):
        self._session = session
        self._ws = ws
        self.join = join
        self._ping_interval = float(join.ping_interval or 5)
        self._ping_timeout = float(join.ping_timeout or 15)
        self._rtt = 0
        self._closing = False
        self.lost_because = ""
        """Why the connection ended, when it was not our doing (empty while it lives, or after `close()`)."""

    @classmethod
    async def open(cls, ws_url: str, token: str) -> SignalConnection:
        """Connects and reads the JoinResponse; SignalRefused (with nothing left open) when that fails."""
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(join_url(ws_url), headers={"Authorization": f"Bearer {token}"})
            first = await ws.receive()
            if first.type != aiohttp.WSMsgType.BINARY:
                raise SignalRefused(
                    f"the server closed the connection instead of answering the join ({first.type.name})"
                )
            response = rtc.SignalResponse.FromString(first.data)
            which = response.WhichOneof("message")
            if which == "leave":
                reason = models.DisconnectReason.Name(response.leave.reason)
                raise SignalRefused(f"the server turned the join down ({reason})")
            if which != "join":
                raise SignalRefused(f"the server answered the join with {which!r}")
            return cls(session, ws, response.join)
        except aiohttp.WSServerHandshakeError as exc:
            await session.close()
            raise SignalRefused(f"the server refused the join: HTTP {exc.status} {exc.message}") from exc
        except aiohttp.ClientConnectorError as exc:
            await session.close()
            code = exc.os_error.errno
            why = os.strerror(code) if code else str(exc.os_error)
            raise SignalRefused(f"cannot reach {exc.host}:{exc.port}: {why}") from exc
        except BaseException:
            await session.close()
            raise

    async def send(self, request: rtc.SignalRequest) -> None:
        """Sends one request; ConnectionError once the connection is closed."""
        await self._ws.send_bytes(request.SerializeToString())

    async def responses(self) -> AsyncIterator[rtc.SignalResponse]:
        """What the server sends, until the connection closes (see `lost_because`); keeps the connection alive."""
        loop_time = time.monotonic
        next_ping = loop_time() + self._ping_interval
        heard = loop_time()
        while True:
            now = loop_time()
            if now >= next_ping:
                if now - heard >= self._ping_timeout:
                    self.lost_because = f"no message from the server for {now - heard:.0f} s"
                    await self._ws.close()
                    return
                await self._ping()
                next_ping = now + self._ping_interval
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


def join_url(ws_url: str) -> str:
    """The `/rtc/v1` URL joining with our client info; the token goes in the Authorization header."""
    request = rtc.JoinRequest(
        client_info=models.ClientInfo(sdk=models.ClientInfo.PYTHON, version=CLIENT_VERSION, protocol=CLIENT_PROTOCOL),
        connection_settings=rtc.ConnectionSettings(auto_subscribe=False),
    )
    wrapped = rtc.WrappedJoinRequest(join_request=request.SerializeToString())
    parts = urlsplit(ws_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/") + "/rtc/v1"
    query = "join_request=" + base64.urlsafe_b64encode(wrapped.SerializeToString()).decode()
    return urlunsplit((scheme, parts.netloc, path, query, ""))
