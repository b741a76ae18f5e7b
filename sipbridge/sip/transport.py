"""The asyncio edge: UDP, TCP and TLS sockets for the sans-IO core.

Stream connections are keyed by their far end, so a response or in-dialog request addressed to a peer reuses the
connection that peer opened (or that we opened to it); connections idle for ``idle_timeout`` are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from sipbridge.netaddr import is_ip
from sipbridge.repeated_log import LoopRepeatedEventLog

from .errors import SipParseError
from .message import StreamFramer
from .tls_policy import TlsPolicy
from .transaction import Address
from .websocket import StreamConnection, WebSocketListener

log = logging.getLogger(__name__)

Receiver = Callable[[bytes, Address], None]
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024  # the kernel caps it at net.core.rmem_max

ErrorHandler = Callable[[Address, str], None]
"""Told when a peer could not be reached, and why (for the log and the caller's error)."""
ConnectionHandler = Callable[[Address, bool], None]
"""Told each time a stream connection with a peer opens (True) or closes (False)."""


@functools.lru_cache(maxsize=4096)
def unmapped(host: str) -> str:
    """``::ffff:192.0.2.1`` → ``192.0.2.1``: a dual-stack socket reports IPv4 peers in mapped form."""
    if host.startswith("::ffff:") and "." in host:
        return host[len("::ffff:") :]
    return host


class _Datagram(asyncio.DatagramProtocol):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        host, port = unmapped(str(addr[0])), int(str(addr[1]))
        if data.strip(b"\r\n"):  # bare CRLF keep-alives carry nothing
            self.receiver(data, Address("UDP", host, port))

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


class _Stream(asyncio.Protocol):
    """One TCP/TLS connection. A message must arrive whole within the owner's ``message_deadline`` of its first
    byte, and a connection a peer opened must bring its first message within that time, or it is closed (slow
    senders hold no connection for long)."""

    def __init__(self, owner: Transports, transport_name: str, *, accepted: bool = False) -> None:
        self.owner = owner
        self.name = transport_name
        self.accepted = accepted
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: Address | None = None
        self.last_used = time.monotonic()
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Address(self.name, unmapped(host), port)
        if self.accepted and not self.owner.admit(self.peer):
            transport.abort()
            return
        self.owner.connections[self.peer] = self
        self.owner.on_connection(self.peer, True)
        if self.accepted:
            self._arm_deadline()

    def data_received(self, data: bytes) -> None:
        self.last_used = time.monotonic()
        try:
            messages = self.framer.feed(data)
        except SipParseError as exc:
            self.owner.refuse(self.peer, f"closing the connection: {exc}")
            self.close()
            return
        if messages:
            self._cancel_deadline()
        if self.framer.pending and self._deadline is None:
            self._arm_deadline()
        for message in messages:
            assert self.peer is not None
            self.owner.receiver(message, self.peer)

    def _arm_deadline(self) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self.owner.message_deadline, self._too_slow)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        self.owner.refuse(self.peer, f"no whole message within {self.owner.message_deadline:.0f} s: closing")
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        if exc is not None and not self.accepted and self.peer is not None:
            # E.g. a TLS 1.3 server refusing our certificate after the handshake: requests waiting on it fail now.
            self.owner.report(self.peer, f"{self.name} connection to {self.peer.host}:{self.peer.port} lost: {exc}")
        if self.peer is not None and self.owner.connections.get(self.peer) is self:
            del self.owner.connections[self.peer]
            self.owner.on_connection(self.peer, False)
            if self.accepted:
                self.owner.release(self.peer)

    def send(self, data: bytes) -> None:
        self.last_used = time.monotonic()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Transports:
    """Listeners plus outgoing connections; ``send`` never blocks (connects and DNS happen in tasks)."""

    def __init__(
        self,
        receiver: Receiver,
        *,
        host: str,
        port: int,
        transports: tuple[str, ...] = ("UDP", "TCP"),
        tls_port: int | None = None,
        tls_cert_file: str | None = None,
        tls_key_file: str | None = None,
        tls_ca_file: str | None = None,
        tls_client_cert: tuple[str, str] | None = None,
        tls_verify_clients: str | None = None,
        tls_policy: TlsPolicy | None = None,
        idle_timeout: float = 600.0,
        message_deadline: float = 32.0,
        max_connections_per_source: int = 64,
        on_error: ErrorHandler | None = None,
        in_use: Callable[[Address], bool] | None = None,
        on_connection: ConnectionHandler = lambda peer, is_open: None,
        ws_port: int | None = None,
        wss_port: int | None = None,
    ) -> None:
        self.receiver = receiver
        self.on_error = on_error
        self.on_connection = on_connection
        self.in_use = in_use  # connections carrying calls are not closed for idleness
        self.host = host
        self.port = port
        self.transports = transports
        self.tls_port = tls_port
        self.idle_timeout = idle_timeout
        self.message_deadline = message_deadline
        self.max_connections_per_source = max_connections_per_source
        self.connections: dict[Address, StreamConnection] = {}
        self.ws_port = ws_port
        self.wss_port = wss_port
        self._websockets: list[WebSocketListener] = []
        self._accepted_per_host: Counter[str] = Counter()
        self._refused = LoopRepeatedEventLog(log, "refused SIP connections or streams")
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_family = socket.AF_INET
        self._servers: list[asyncio.Server] = []
        self._pending: dict[Address, list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._server_tls: ssl.SSLContext | None = None
        self._wss_tls: ssl.SSLContext | None = None
        self._tls_ca_file = tls_ca_file
        self._tls_policy = tls_policy
        self._client_tls = self._client_context(tls_client_cert)
        self._client_tls_by_cert: dict[tuple[str, str], ssl.SSLContext] = {}
        self._client_tls_by_peer: dict[tuple[str, int], ssl.SSLContext] = {}
        if tls_cert_file and tls_key_file:
            self._server_tls = self._server_context(tls_cert_file, tls_key_file, tls_verify_clients, alpn=True)
            if wss_port is not None:  # wss is HTTP underneath: the same policy, but not the "sip" ALPN
                self._wss_tls = self._server_context(tls_cert_file, tls_key_file, tls_verify_clients, alpn=False)

    def _server_context(self, cert: str, key: str, verify_clients: str | None, *, alpn: bool) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        if verify_clients is not None:  # mutual TLS: a client without a certificate from these CAs is cut
            context.load_verify_locations(cafile=verify_clients)
            context.verify_mode = ssl.CERT_REQUIRED
        if self._tls_policy is not None:
            self._tls_policy.apply(context, alpn=alpn)
        return context

    def _client_context(self, cert: tuple[str, str] | None) -> ssl.SSLContext:
        """Our TLS client side: carriers verified against ``tls_ca_file`` (else the system store), and our
        certificate shown when one is given (mutual TLS)."""
        context = ssl.create_default_context(cafile=self._tls_ca_file)
        if cert is not None:
            context.load_cert_chain(*cert)
        if self._tls_policy is not None:
            self._tls_policy.apply(context)
        return context

    def use_client_certificate(self, peer: Address, cert: tuple[str, str]) -> None:
        """Show ``cert`` (certificate and key files) on TLS connections we open to ``peer`` (a trunk's target)."""
        context = self._client_tls_by_cert.get(cert)
        if context is None:
            context = self._client_tls_by_cert[cert] = self._client_context(cert)
        self._client_tls_by_peer[(peer.host, peer.port)] = context

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if "UDP" in self.transports:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Datagram(self.receiver), local_addr=(self.host, self.port)
            )
            self._udp = transport
            sock = transport.get_extra_info("socket")
            self._udp_family = sock.family
            with contextlib.suppress(OSError):  # bursts of INVITEs must not overflow the default buffer
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
            self.port = transport.get_extra_info("sockname")[1]  # port 0 picks a free one
        # "::" means every address of both families: the UDP socket is dual-stack, the TCP/TLS listeners get
        # one socket per family (asyncio makes IPv6 stream sockets IPv6-only).
        stream_host = None if self.host == "::" else self.host
        if "TCP" in self.transports:
            server = await loop.create_server(lambda: _Stream(self, "TCP", accepted=True), stream_host, self.port)
            self._servers.append(server)
            self.port = server.sockets[0].getsockname()[1]
        if self._server_tls is not None and self.tls_port is not None:
            server = await loop.create_server(
                lambda: _Stream(self, "TLS", accepted=True), stream_host, self.tls_port, ssl=self._server_tls
            )
            self._servers.append(server)
            self.tls_port = server.sockets[0].getsockname()[1]
        for secure, port in ((False, self.ws_port), (True, self.wss_port)):
            if port is None or (secure and self._wss_tls is None):
                continue
            context = self._wss_tls if secure else None
            listener = WebSocketListener(self, stream_host, port, secure=secure, context=context)
            bound = await listener.start()
            self._websockets.append(listener)
            if secure:
                self.wss_port = bound
            else:
                self.ws_port = bound
        self._spawn(self._reap_idle())

    def peer(self, transport: str, host: str, port: int) -> Address:
        """The Address of a stream peer as a socket reports it."""
        return Address(transport, unmapped(host), port)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers:
            server.close()
        for conn in list(self.connections.values()):
            conn.close()
        for listener in self._websockets:
            await listener.close()
        if self._udp is not None:
            self._udp.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    def admit(self, peer: Address) -> bool:
        """Whether a connection a peer opened may stay: each source host may hold a few at once."""
        if self._accepted_per_host[peer.host] >= self.max_connections_per_source:
            self.refuse(peer, f"more than {self.max_connections_per_source} connections from this host: closing")
            return False
        self._accepted_per_host[peer.host] += 1
        return True

    def release(self, peer: Address) -> None:
        self._accepted_per_host[peer.host] -= 1
        if self._accepted_per_host[peer.host] <= 0:
            del self._accepted_per_host[peer.host]

    def refuse(self, peer: Address | None, why: str) -> None:
        self._refused.note_now(peer.host if peer is not None else "?", why)

    def send(self, data: bytes, dest: Address) -> None:
        if dest.transport == "UDP":
            if is_ip(dest.host) and self._udp is not None:
                self._udp.sendto(data, (self._udp_host(dest.host), dest.port))
            else:
                self._spawn(self._send_udp_resolved(data, dest))
            return
        conn = self.connections.get(dest)
        if conn is not None:
            conn.send(data)
            return
        if dest.transport in ("WS", "WSS"):  # only the client opens a WebSocket: once it is gone, so is the peer
            why = f"no {dest.transport} connection from {dest.host}:{dest.port} any more"
            asyncio.get_running_loop().call_soon(self.report, dest, why)  # not from inside the core's turn
            return
        queued = self._pending.get(dest)
        if queued is not None:
            queued.append(data)
            return
        self._pending[dest] = [data]
        self._spawn(self._connect(dest))

    def _udp_host(self, host: str) -> str:
        """A dual-stack (IPv6) socket needs IPv4 destinations in mapped form."""
        if self._udp_family == socket.AF_INET6 and ":" not in host:
            return "::ffff:" + host
        return host

    async def _send_udp_resolved(self, data: bytes, dest: Address) -> None:
        loop = asyncio.get_running_loop()
        try:
            family = socket.AF_INET if self._udp_family == socket.AF_INET else 0
            infos = await loop.getaddrinfo(dest.host, dest.port, family=family, type=socket.SOCK_DGRAM)
        except OSError as exc:
            self.report(dest, f"cannot resolve {dest.host}: {exc}")
            return
        if self._udp is not None and infos:
            self._udp.sendto(data, (self._udp_host(str(infos[0][4][0])), int(infos[0][4][1])))

    async def _connect(self, dest: Address) -> None:
        loop = asyncio.get_running_loop()
        tls = None
        if dest.transport == "TLS":
            tls = self._client_tls_by_peer.get((dest.host, dest.port), self._client_tls)
        try:
            _, protocol = await loop.create_connection(
                lambda: _Stream(self, dest.transport), dest.host, dest.port, ssl=tls,
                server_hostname=(dest.server_name or dest.host) if tls is not None else None,
            )  # fmt: skip
        except ssl.SSLError as exc:
            self._pending.pop(dest, None)
            self.report(dest, f"TLS handshake with {dest.host}:{dest.port} failed: {exc}")
            return
        except OSError as exc:
            self._pending.pop(dest, None)
            self.report(dest, f"cannot connect to {dest.transport} {dest.host}:{dest.port}: {exc.strerror or exc}")
            return
        assert isinstance(protocol, _Stream)
        if protocol.peer is not None and protocol.peer != dest:
            self.connections[dest] = protocol  # a hostname destination: reachable under both keys
        for data in self._pending.pop(dest, []):
            protocol.send(data)

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(min(self.idle_timeout, 30.0))
            cutoff = time.monotonic() - self.idle_timeout
            for address, conn in list(self.connections.items()):
                if conn.last_used < cutoff and not (self.in_use is not None and self.in_use(address)):
                    conn.close()

    def report(self, dest: Address, why: str) -> None:
        log.warning("%s", why)
        if self.on_error is not None:
            self.on_error(dest, why)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def primary_local_address(family: int = socket.AF_INET) -> str:
    """The address the OS would use towards the internet (no packet is sent), for a wildcard bind."""
    probe = "192.0.2.1" if family == socket.AF_INET else "2001:db8::1"
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((probe, 9))
            return str(sock.getsockname()[0])
        except OSError:
            return "127.0.0.1" if family == socket.AF_INET else "::1"
