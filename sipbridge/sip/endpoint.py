"""The asyncio surface the call flows use: an ``Endpoint`` owning sockets and the clock, and one object per call
(``InboundCall``, ``OutboundCall``) that names its call in the core by ``CallHandle``.

Every action runs the sans-IO core synchronously, then flushes its output and re-arms the single timer, so
there is exactly one place where time and sockets meet the state machines. What the transports see of stream
connections opening and closing goes to the core as input.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from sipbridge.netaddr import address_in, interface_addresses

from .auth import Credentials, DigestCheck
from .call_state import CallState
from .errors import SipParseError
from .events import (
    CallAcked,
    CallAnswered,
    CallEnded,
    CallHandle,
    Event,
    IncomingCall,
    RegistrationChanged,
    TransferProgress,
)
from .message import Request, Response
from .offer_answer import MediaParams, MediaSession
from .registration import RegistrationSpec
from .resolver import SipResolver
from .sdp import SessionDescription
from .settings import SipSettings
from .stun import discover_external_ip
from .transaction import Address
from .transport import Transports, primary_local_address
from .uri import NameAddr, SipUri, Uri
from .useragent import UserAgent

log = logging.getLogger(__name__)
T = TypeVar("T")


class CallFailed(Exception):
    """The call ended before the awaited step (answer, ACK, transfer); ``status`` is the SIP status if any,
    ``detail`` what the transport said when the peer could not be reached (a refused TLS handshake, ...)."""

    def __init__(self, reason: str, status: int | None, detail: str = "") -> None:
        text = f"{reason} ({status})" if status else reason
        super().__init__(f"{text}: {detail}" if detail else text)
        self.reason = reason
        self.status = status
        self.detail = detail


class SipCall:
    """Shared by inbound and outbound calls: events, hang-up, transfer, DTMF. Reads and acts through the
    endpoint's user agent by the call's handle."""

    def __init__(self, endpoint: Endpoint, handle: CallHandle) -> None:
        assert endpoint.ua is not None  # calls exist once the endpoint has started
        self._endpoint = endpoint
        self._ua = endpoint.ua
        self.handle = handle
        info = self._ua.call_info(handle)
        self.call_id = info.call_id
        self._peer = info.peer
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._ended: asyncio.Future[CallEnded] = asyncio.get_running_loop().create_future()
        self._answered: asyncio.Future[MediaParams] = asyncio.get_running_loop().create_future()
        self._transfer: asyncio.Future[TransferProgress] | None = None

    @property
    def media(self) -> MediaParams | None:
        """The negotiated media while the call lasts."""
        return None if self.ended else self._ua.call_info(self.handle).media

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

    async def hold(self) -> None:
        """re-INVITE with ``sendonly``; the outcome arrives as MediaUpdated (direction ``sendonly``)."""
        self._require_dialog(confirmed=True)
        self._endpoint.run(lambda now: self._ua.reinvite(self.handle, now, direction="sendonly"))

    async def unhold(self) -> None:
        """re-INVITE with ``sendrecv``; the outcome arrives as MediaUpdated."""
        self._require_dialog(confirmed=True)
        self._endpoint.run(lambda now: self._ua.reinvite(self.handle, now, direction="sendrecv"))

    async def send_dtmf(self, digit: str, duration_ms: int = 250) -> None:
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


class InboundCall(SipCall):
    """An INVITE handed to the incoming-call handler."""

    def __init__(self, endpoint: Endpoint, handle: CallHandle) -> None:
        super().__init__(endpoint, handle)
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

    async def challenge(self, *, proxy: bool = False, stale: bool = False, realm: str | None = None) -> None:
        """401/407 (in ``realm``, else the stack's); the authorised retry arrives as a new InboundCall."""
        self._endpoint.run(lambda now: self._ua.challenge(self.handle, now, proxy=proxy, stale=stale, realm=realm))

    async def trying(self) -> None:
        """100 Trying; only needed with hide_inbound_port, once the caller passed trunk matching."""
        self._endpoint.run(lambda now: self._ua.trying(self.handle, now))

    async def ring(self) -> None:
        self._endpoint.run(lambda now: self._ua.ring(self.handle, now))

    async def progress(self, media: MediaSession) -> None:
        self._endpoint.run(lambda now: self._ua.progress(self.handle, media, now))

    async def answer(self, media: MediaSession, headers: dict[str, str] | None = None) -> MediaParams:
        """200 OK, then wait for the ACK. Raises NegotiationError (488 sent) or CallFailed."""
        if self.ended:
            raise CallFailed(self._ended.result().reason, None)  # e.g. CANCELled while we set up the room
        self._endpoint.run(lambda now: self._ua.answer(self.handle, media, now, extra_headers=headers))
        return await asyncio.shield(self._answered)

    async def reject(self, status: int = 486, reason: str = "", headers: dict[str, str] | None = None) -> None:
        self._endpoint.run(lambda now: self._ua.reject(self.handle, status, now, reason=reason, headers=headers))

    async def drop(self) -> None:
        """No answer at all (hide_inbound_port for callers we do not know)."""
        self._endpoint.run(lambda now: self._ua.drop(self.handle, now))


class OutboundCall(SipCall):
    async def wait_answered(self) -> MediaParams:
        """The negotiated media once the callee answered; CallFailed(status) on rejection, timeout or cancel."""
        return await asyncio.shield(self._answered)


IncomingHandler = Callable[[InboundCall], Awaitable[None]]
MessageTap = Callable[[bytes, bool, Address], None]
"""Told of every SIP message as it leaves (True) or arrives (False), with the peer's address: the call traces."""
RegistrationWatcher = Callable[[RegistrationSpec, RegistrationChanged], None]


class Endpoint:
    def __init__(self, settings: SipSettings, on_incoming: IncomingHandler | None = None) -> None:
        self.settings = settings
        self._on_incoming = on_incoming
        self.ua: UserAgent | None = None
        self.transports: Transports | None = None
        self._calls: dict[CallHandle, SipCall] = {}
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
            tls_client_cert=s.tls_client_cert, tls_verify_clients=s.tls_verify_clients,
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

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._lag_watch is not None:
            self._lag_watch.cancel()
        for task in list(self._handlers):
            task.cancel()
        if self.transports is not None:
            await self.transports.close()

    async def place_call(
        self,
        target: Uri | str,
        media: MediaSession,
        *,
        from_uri: Uri | str,
        display_name: str | None = None,
        to: NameAddr | None = None,
        destination: Address | None = None,
        alternatives: Sequence[Address] = (),
        transport: str = "UDP",
        credentials: Credentials | None = None,
        headers: dict[str, str] | None = None,
        client_cert: tuple[str, str] | None = None,
    ) -> OutboundCall:
        """Send the INVITE; await ``wait_answered()`` on the result for the outcome. ``alternatives``: where it
        goes when ``destination`` fails (``resolve``'s later targets); ``client_cert``: (certificate, key) files
        shown on TLS connections to these targets instead of the global one (mutual TLS per trunk)."""
        assert self.ua is not None and self.transports is not None
        ua = self.ua
        if client_cert is not None:
            for peer in (destination, *alternatives):
                if peer is not None:
                    self.transports.use_client_certificate(peer, client_cert)
        handle = self.run(
            lambda now: ua.invite(
                target, media, now, from_uri=from_uri, display_name=display_name, to=to, destination=destination,
                alternatives=alternatives, transport=transport, credentials=credentials, headers=headers,
            )
        )  # fmt: skip
        call = OutboundCall(self, handle)
        self._calls[handle] = call
        return call

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
            call = InboundCall(self, event.handle)
            self._calls[event.handle] = call
            call.deliver(event)
            if self._on_incoming is None:
                assert self.ua is not None
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

    async def _handle(self, call: InboundCall) -> None:
        """Run the call flow's handler; a failure is contained to this call (answered 500 or hung up)."""
        assert self._on_incoming is not None
        try:
            await self._on_incoming(call)
        except asyncio.CancelledError:
            log.info("call %s: its handler was cancelled (the node is stopping)", call.call_id)
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
