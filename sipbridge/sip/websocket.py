"""SIP over WebSocket (RFC 7118): a ``ws``/``wss`` listener for browser softphones (JsSIP, SIP.js) and WebRTC
gateways, on aiohttp's WebSocket server.

Each WebSocket message carries one SIP message. A connection is a stream peer like a TCP one (``Address`` with
transport ``WS`` or ``WSS``): responses and in-dialog requests go back over it, and the core never retransmits
over it. A client that does not offer the ``sip`` subprotocol is refused before the upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from typing import Protocol

from aiohttp import WSMsgType, web

from .transaction import Address

log = logging.getLogger(__name__)
SUBPROTOCOL = "sip"
MAX_MESSAGE = 65535


class StreamOwner(Protocol):
    """What the listener needs of the transports: the connection table, admission, and where messages go."""

    connections: dict[Address, StreamConnection]
    receiver: Callable[[bytes, Address], None]
    on_connection: Callable[[Address, bool], None]

    def admit(self, peer: Address) -> bool: ...

    def release(self, peer: Address) -> None: ...

    def peer(self, transport: str, host: str, port: int) -> Address: ...


class StreamConnection(Protocol):
    last_used: float

    def send(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class WebSocketConnection:
    """One client's WebSocket, as the transports see a stream: ``send`` queues a frame, ``close`` ends it."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.last_used = time.monotonic()
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()

    def send(self, data: bytes) -> None:
        self.last_used = time.monotonic()
        self._outbox.put_nowait(data)

    def close(self) -> None:
        self._outbox.put_nowait(None)

    async def write(self) -> None:
        """Send queued messages in order, as text frames (SIP is text; RFC 7118 allows either)."""
        while (data := await self._outbox.get()) is not None:
            try:
                await self.ws.send_str(data.decode("utf-8", errors="replace"))
            except ConnectionError:
                break
        await self.ws.close()


class WebSocketListener:
    def __init__(
        self, owner: StreamOwner, host: str | None, port: int, *, secure: bool, context: ssl.SSLContext | None
    ) -> None:
        self.owner = owner
        self.host = host
        self.port = port
        self.transport = "WSS" if secure else "WS"
        self.context = context
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.context)
        await site.start()
        server = site._server  # the bound port, when 0 asked the OS for one
        if isinstance(server, asyncio.Server) and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        offered = {p.strip().lower() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")}
        if SUBPROTOCOL not in offered:
            return web.Response(status=400, text="SIP over WebSocket needs the 'sip' subprotocol (RFC 7118)\n")
        host, port = request.transport.get_extra_info("peername")[:2] if request.transport else ("?", 0)
        peer = self.owner.peer(self.transport, str(host), int(port))
        if not self.owner.admit(peer):
            return web.Response(status=503, text="too many connections\n")
        ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), max_msg_size=MAX_MESSAGE, heartbeat=None)
        try:
            await ws.prepare(request)
            connection = WebSocketConnection(ws)
            writer = asyncio.ensure_future(connection.write())
            self.owner.connections[peer] = connection
            self.owner.on_connection(peer, True)
            try:
                await self._read(ws, peer, connection)
            finally:
                connection.close()
                with contextlib.suppress(Exception):
                    await writer
                if self.owner.connections.get(peer) is connection:
                    del self.owner.connections[peer]
                    self.owner.on_connection(peer, False)
        finally:
            self.owner.release(peer)
        return ws

    async def _read(self, ws: web.WebSocketResponse, peer: Address, connection: WebSocketConnection) -> None:
        async for message in ws:
            connection.last_used = time.monotonic()
            if message.type == WSMsgType.TEXT:
                data = message.data.encode()
            elif message.type == WSMsgType.BINARY:
                data = message.data
            else:
                break
            if data.strip(b"\r\n"):  # a bare CRLF is a keep-alive
                self.owner.receiver(data, peer)
