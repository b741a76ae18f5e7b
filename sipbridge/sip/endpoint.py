"""The asyncio surface the call flows use: an ``Endpoint`` owning sockets and the clock, and one SIP leg per call
(``sipbridge.sip.legs``: ``InboundLeg`` for an INVITE we answer, ``OutboundLeg`` for one we sent).

Every action runs the sans-IO core synchronously, then flushes its output and re-arms the single timer, so
there is exactly one place where time and sockets meet the state machines. What the transports see of stream
connections opening and closing goes to the core as input.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from sipbridge.netaddr import address_in, interface_addresses

from .auth import DigestCredentials
from .call_state import CallState
from .dialling import first_hop
from .errors import SipParseError
from .events import (
    CallEnded,
    CallHandle,
    Event,
    IncomingCall,
    RegistrationChanged,
)
from .legs import CallFailed, InboundLeg, OutboundLeg, SipLeg
from .offer_answer import MediaSession
from .registration import RegistrationSpec
from .resolver import SipResolver
from .settings import SipSettings
from .stun import discover_external_ip
from .transaction import Address
from .transport import Transports, primary_local_address
from .uri import NameAddr, SipUri, Uri
from .useragent import UserAgent

log = logging.getLogger(__name__)
T = TypeVar("T")


IncomingHandler = Callable[[InboundLeg], Awaitable[None]]
MessageTap = Callable[[bytes, bool, Address], None]
"""Told of every SIP message as it leaves (True) or arrives (False), with the peer's address: the call traces."""
RegistrationWatcher = Callable[[RegistrationSpec, RegistrationChanged], None]


class Endpoint:
    def __init__(self, settings: SipSettings) -> None:
        self.settings = settings
        self._on_incoming: IncomingHandler | None = None
        self.ua: UserAgent | None = None
        self.transports: Transports | None = None
        self._calls: dict[CallHandle, SipLeg] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._lag_watch: asyncio.Task[None] | None = None
        self.tap: MessageTap | None = None
        self.resolver = SipResolver(settings.dns_servers)
        self.registrations: dict[int, tuple[RegistrationSpec, RegistrationChanged | None]] = {}
        """Each registration's spec and latest state, by handle."""
        self._registration_watchers: list[RegistrationWatcher] = []
        self._registrations_changed = asyncio.Event()
        self._failures: dict[Address, str] = {}  # why each peer that could not be reached was not (a few kept)

    @property
    def local_host(self) -> str:
        assert self.ua is not None
        return self.ua.locality.host

    @property
    def active_calls(self) -> int:
        """Calls with a live dialog or pending INVITE (for max_active_calls and health)."""
        return self.ua.active_calls if self.ua is not None else 0

    @property
    def port(self) -> int:
        assert self.transports is not None
        return self.transports.port

    async def start(self) -> None:
        s = self.settings
        self.transports = Transports(
            self._receive, host=s.bind_host, port=s.port, transports=s.transports, tls_port=s.tls_port,
            tls_cert_file=s.tls_cert_file, tls_key_file=s.tls_key_file, tls_ca_file=s.tls_ca_file,
            tls_client_cert=s.tls_client_cert, tls_verify_clients=s.tls_verify_clients, tls_policy=s.tls_policy,
            idle_timeout=s.stream_idle_timeout, message_deadline=s.stream_message_deadline,
            max_connections_per_source=s.max_connections_per_source, on_error=self._transport_error,
            in_use=self._carries_calls, on_connection=self._connection_changed, ws_port=s.ws_port,
            wss_port=s.wss_port if s.tls_cert_file else None,
        )  # fmt: skip
        await self.transports.start()
        bound = s.bind_host
        local = bound if bound not in ("0.0.0.0", "::", "") else self._local_address()
        # Ports chosen by the OS (port 0, used by tests) become the ones we advertise.
        advertised = s.advertised_host
        if advertised is None and s.use_external_ip:
            advertised = await discover_external_ip(s.stun_servers)
            if advertised is None:
                log.warning("use_external_ip: no STUN server answered; advertising %s", local)
        self.settings = replace(
            s, port=self.transports.port, tls_port=self.transports.tls_port, advertised_host=advertised,
            ws_port=self.transports.ws_port, wss_port=self.transports.wss_port,
        )  # fmt: skip
        local_v6 = primary_local_address(socket.AF_INET6) if bound == "::" else None
        self.ua = UserAgent(self.settings, local_host=local, local_host_v6=local_v6, secret=self.settings.nonce_secret)
        if s.overload_lag > 0:
            self._lag_watch = asyncio.ensure_future(self._watch_lag(s.overload_lag))

    def take_calls(self, on_incoming: IncomingHandler) -> None:
        """Hand every INVITE from now on to ``on_incoming`` (one task per call). Until then INVITEs are refused
        with 480: the endpoint listens, and learns its address, before the calls' side is built from it."""
        self._on_incoming = on_incoming

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._lag_watch is not None:
            self._lag_watch.cancel()
        for task in list(self._handlers):
            task.cancel()
        if self.transports is not None:
            await self.transports.close()

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
    ) -> OutboundLeg:
        """Send the INVITE offering ``offer_answer``'s SDP; await ``wait_answered()`` on the leg for the outcome.
        ``alternatives``: where it goes when ``destination`` fails (``resolve``'s later targets); ``client_cert``:
        (certificate, key) files shown on TLS connections to these targets instead of the global one (mutual TLS
        per trunk)."""
        assert self.ua is not None and self.transports is not None
        ua = self.ua
        if client_cert is not None:
            for peer in (destination, *alternatives):
                if peer is not None:
                    self.transports.use_client_certificate(peer, client_cert)
        handle = self.run(
            lambda now: ua.invite(
                target, offer_answer, now, from_uri=from_uri, display_name=display_name, to=to, destination=destination,
                alternatives=alternatives, transport=transport, credentials=credentials, headers=headers,
            )
        )  # fmt: skip
        leg = OutboundLeg(self, ua, handle)
        self._calls[handle] = leg
        return leg

    def _local_address(self) -> str:
        """The address to signal from on a wildcard bind: one in ``local_net`` when set (a machine with several
        networks), else the one the OS routes to the internet from."""
        if self.settings.local_net:
            found = address_in(self.settings.local_net, interface_addresses())
            if found is not None:
                return found
            log.warning("local_net %s: no interface has an address there", self.settings.local_net)
        return primary_local_address()

    def register(self, spec: RegistrationSpec) -> int:
        """Register ``spec`` and keep it registered (refreshes, retries, keep-alives) until ``unregister_all``."""
        assert self.ua is not None
        ua = self.ua
        handle = self.run(lambda now: ua.register(spec, now))
        self.registrations.setdefault(handle, (spec, None))
        return handle

    def watch_registrations(self, watcher: RegistrationWatcher) -> None:
        """Call ``watcher`` on every registration's change of state (logs, metrics)."""
        self._registration_watchers.append(watcher)

    async def unregister_all(self, within: float) -> None:
        """Remove every binding (``Expires: 0``) and wait, up to ``within`` seconds, for the registrars' answers."""
        if self.ua is None:
            return
        ua = self.ua
        for handle in self.registrations:
            self.run(functools.partial(ua.unregister, handle))
        try:
            async with asyncio.timeout(within):
                while any(ua.registration(h).state != "unregistered" for h in self.registrations):
                    self._registrations_changed.clear()
                    await self._registrations_changed.wait()
        except TimeoutError:
            log.warning("un-REGISTER: no answer from every registrar within %.0f s", within)

    def next_hop(self, target: SipUri) -> Uri:
        """Where a new call to ``target`` is sent: the first outbound Route (``outbound_route_headers``), else the
        target itself; ``resolve`` it for the addresses."""
        return first_hop(target, self.settings.outbound_routes)

    async def resolve(self, uri: SipUri, transport: str | None) -> list[Address]:
        """RFC 3263: where to send requests for ``uri``, best first (``transport`` None: NAPTR decides)."""
        return await self.resolver.resolve(uri, transport)

    def transport_failure(self, peer: Address | None) -> str:
        """Why ``peer`` could not be reached, when the transport said so."""
        return self._failures.get(peer, "") if peer is not None else ""

    def run(self, action: Callable[[float], T]) -> T:
        """Run one core action at the current time, then send, dispatch events and re-arm the timer."""
        try:
            return action(asyncio.get_running_loop().time())
        finally:
            self._after_core()

    # ---- plumbing -------------------------------------------------------------------------------------------

    def _receive(self, data: bytes, source: Address) -> None:
        assert self.ua is not None
        ua = self.ua
        if self.tap is not None:
            self.tap(data, False, source)
        self.run(lambda now: ua.receive_datagram(data, source, now))

    async def _watch_lag(self, threshold: float) -> None:
        """Overload detection: how late a short sleep wakes up, smoothed; above ``threshold`` new INVITEs are
        refused with 503 so the calls already admitted keep their timers instead of drowning in retransmissions."""
        loop = asyncio.get_running_loop()
        smoothed = 0.0
        while True:
            start = loop.time()
            await asyncio.sleep(0.05)
            smoothed = 0.8 * smoothed + 0.2 * max(0.0, loop.time() - start - 0.05)
            if self.ua is not None:
                if self.ua.overloaded != (smoothed > threshold):
                    log.warning("SIP overload %s (event loop %.0f ms late)", smoothed > threshold, smoothed * 1e3)
                self.ua.overloaded = smoothed > threshold

    def _carries_calls(self, peer: Address) -> bool:
        return self.ua is not None and self.ua.carries_calls(peer)

    def _connection_changed(self, peer: Address, is_open: bool) -> None:
        if self.ua is not None:
            ua = self.ua
            if is_open:
                ua.connection_made(peer)
            else:
                self.run(lambda now: ua.connection_lost(peer, now))

    def _transport_error(self, dest: Address, why: str) -> None:
        self._failures[dest] = why
        if len(self._failures) > 256:
            del self._failures[next(iter(self._failures))]
        if self.ua is not None:
            ua = self.ua
            self.run(lambda now: ua.transport_error(dest, now))

    def _on_timer(self) -> None:
        self._timer = None
        assert self.ua is not None
        self.run(self.ua.handle_timer)

    def _after_core(self) -> None:
        ua, transports = self.ua, self.transports
        if ua is None or transports is None:
            return
        tap = self.tap
        for data, dest in ua.datagrams_to_send():
            transports.send(data, dest)
            if tap is not None:
                tap(data, True, dest)
        while (event := ua.next_event()) is not None:
            self._dispatch(event)
        for data, dest in ua.datagrams_to_send():
            transports.send(data, dest)
            if tap is not None:
                tap(data, True, dest)
        deadline = ua.get_timer()
        if self._timer is not None and (deadline is None or self._timer.when() != deadline):
            self._timer.cancel()
            self._timer = None
        if deadline is not None and self._timer is None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, RegistrationChanged):
            spec = self.registrations[event.handle][0]
            self.registrations[event.handle] = (spec, event)
            self._registrations_changed.set()
            for watch in self._registration_watchers:
                watch(spec, event)
            return
        if isinstance(event, IncomingCall):
            assert self.ua is not None  # events come out of the core once it runs
            call = InboundLeg(self, self.ua, event.handle)
            self._calls[event.handle] = call
            call.deliver(event)
            if self._on_incoming is None:
                self.ua.reject(event.handle, 480, asyncio.get_running_loop().time())
                return
            task = asyncio.ensure_future(self._handle(call))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
            return
        known = self._calls.get(event.handle)
        if known is None:
            return
        known.deliver(event)
        if isinstance(event, CallEnded):
            del self._calls[event.handle]

    async def _handle(self, call: InboundLeg) -> None:
        """Run the call flow's handler; a failure is contained to this call (answered 500 or hung up)."""
        assert self._on_incoming is not None
        try:
            await self._on_incoming(call)
        except asyncio.CancelledError:
            log.info("call %s: its handler was cancelled (the node is stopping)", call.call_id)
            raise
        except (SipParseError, CallFailed) as exc:
            log.info("call %s ended in its handler: %s", call.call_id, exc)  # a 488, or the caller went away
        except Exception:
            log.exception("incoming-call handler failed for %s", call.call_id)
            if not call.ended and self.ua is not None:
                ua = self.ua
                if ua.state(call.handle) in (CallState.INCOMING, CallState.EARLY):
                    self.run(lambda now: ua.reject(call.handle, 500, now))
                else:
                    self.run(lambda now: ua.hangup(call.handle, now))
