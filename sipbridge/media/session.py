"""One call's RTP session on asyncio: the sockets, the 20 ms cadence, symmetric RTP and the port's lifetime.

The sockets are not watched by the event loop: the shared 20 ms cadence drains them each tick
(sipbridge.media.udp says why), then sends and plays one frame each way.

``open`` binds a port pair from the allocator before the SDP is written (the port goes into it); ``start``
begins media once offer/answer has settled the codec and the peer's address. Every frame the session takes
one frame from ``source`` (the mixer, a prompt, or silence), sends it, and hands one frame of the caller's
audio to ``sink``. ``close`` (also on leaving ``async with``, whatever the reason) stops everything, sends an
RTCP BYE, closes the sockets and gives the ports back; it is safe to call more than once.

Whose packets are taken and where ours go is the `RtpLatch`'s decision (sipbridge.media.latch): the SDP
address, or the NAT port the peer's packets really come from, latched once; strangers are dropped unread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import weakref
from collections import Counter
from collections.abc import Callable
from types import TracebackType

import numpy as np
from aiortc.rtp import is_rtcp

from sipbridge.media.cadence import SharedCadence
from sipbridge.media.codecs import Pcm
from sipbridge.media.latch import RtpLatch
from sipbridge.media.ports import PortAllocator, PortsExhausted
from sipbridge.media.stream import DIGIT_MS, MediaStream, StreamConfig
from sipbridge.media.udp import Address, DatagramCollector, PolledUdpSocket
from sipbridge.netaddr import is_ip

logger = logging.getLogger(__name__)

RESOLVE_TIMEOUT = 2.0
"""Seconds a host name in the peer's SDP may take to resolve before the call's media is given up."""
RTCP_INTERVAL = 5.0
"""Seconds between our RTCP reports (RFC 3550's minimum for a two-party session)."""


class RtpSession:
    def __init__(
        self,
        allocator: PortAllocator,
        port: int,
        rtp: PolledUdpSocket,
        rtcp: PolledUdpSocket | None,
        clock: Callable[[], float],
    ) -> None:
        self._allocator = allocator
        self.local_port = port
        self._rtp_socket = rtp
        self._rtcp_socket = rtcp
        self._clock = clock
        self.stream: MediaStream | None = None
        self.latch: RtpLatch | None = None
        self.remote: Address | None = None
        self.remote_rtcp: Address | None = None
        self.source: Callable[[], Pcm | None] | None = None
        """Audio to send, one frame per call; None (or returning None) sends silence."""
        self.sink: Callable[[Pcm], None] | None = None
        """Receives the caller's audio, one frame per call, at the codec's sample rate."""
        self.on_digit: Callable[[str], None] | None = None
        self.on_media_lost: Callable[[str], None] | None = None
        """Called once with "timeout" when RTP stopped for the media timeout, or "error" if the media task
        failed; the call should hang up."""
        self._cadence: SharedCadence | None = None
        self._subscription = 0
        self._resolving: asyncio.Future[None] | None = None
        self._frames_since_rtcp = 0
        self._timeout_reported = False
        self._closed = False
        self._earlier_packets: Counter[tuple[str, str]] = Counter()
        """Packet counts of the streams a re-INVITE replaced."""
        self._digits_sent = asyncio.Event()
        """Clear while digits queued by `send_digits` are going out; the cadence sets it when they are gone."""
        self._digits_sent.set()
        self._collector = DatagramCollector.for_loop()
        self._collector.add(rtp)
        if rtcp is not None:
            self._collector.add(rtcp)
        # a safety net: a session dropped without close() still gives its sockets and ports back when it is
        # garbage collected (a started one is held by the cadence until closed, so close() remains the rule)
        self._release = weakref.finalize(self, _release, allocator, port, self._collector, rtp, rtcp)

    @classmethod
    async def open(
        cls,
        allocator: PortAllocator,
        host: str,
        rtcp_mux: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> RtpSession:
        """Binds the next free port pair of the range (skipping ports other processes hold)."""
        for _ in range(allocator.capacity):
            port = allocator.allocate()
            rtp: PolledUdpSocket | None = None
            try:
                rtp = PolledUdpSocket(host, port)
                rtcp = None if rtcp_mux else PolledUdpSocket(host, port + 1)
            except OSError:
                if rtp is not None:
                    rtp.close()
                allocator.release(port)
                continue
            except BaseException:
                if rtp is not None:
                    rtp.close()
                allocator.release(port)
                raise
            return cls(allocator, port, rtp, rtcp, clock)
        raise PortsExhausted("no RTP port of the range could be bound")

    def start(
        self,
        config: StreamConfig,
        remote: Address,
        remote_rtcp: Address | None = None,
        *,
        signalling_host: str | None = None,
        learn_any: bool = False,
    ) -> None:
        """Begins media with what offer/answer settled; calling it again (re-INVITE) switches to the new setup.

        ``signalling_host``: where the call's SIP comes from, whose other ports may latch (NAT); ``learn_any``
        (``symmetric_rtp``): any address may latch in the first seconds."""
        if self._closed:
            raise RuntimeError("session is closed")
        now = self._clock()
        if self.stream is not None:
            self._earlier_packets.update(self.stream.packet_counts())
        self.stream = MediaStream(config, now)
        self._digits_sent.set()  # digits queued on the stream replaced went with it
        self._timeout_reported = False
        if self._resolving is not None:
            self._resolving.cancel()
            self._resolving = None
        self.latch = self.remote = self.remote_rtcp = None
        if is_ip(remote[0]):
            self._aim(remote, remote_rtcp, signalling_host, learn_any)
        else:  # a host name in c=: resolved once, off the event loop; nothing is sent or taken meanwhile
            self._resolving = asyncio.ensure_future(self._resolve(remote, remote_rtcp, signalling_host, learn_any))
        interval = self.stream.ptime_ms / 1000
        if self._cadence is not None and self._cadence.interval != interval:
            self._cadence.unsubscribe(self._subscription)
            self._cadence = None
        if self._cadence is None:
            self._cadence = SharedCadence.for_loop(interval, self._clock)
            self._subscription = self._cadence.subscribe(self._on_frames, self._on_cadence_error)

    def _aim(
        self, remote: Address, remote_rtcp: Address | None, signalling_host: str | None, learn_any: bool
    ) -> None:
        self.latch = RtpLatch(remote, self._clock(), signalling_host=signalling_host, learn_any=learn_any)
        self.remote = remote
        self.remote_rtcp = remote if self._rtcp_socket is None else (remote_rtcp or (remote[0], remote[1] + 1))

    async def _resolve(
        self, remote: Address, remote_rtcp: Address | None, signalling_host: str | None, learn_any: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(remote[0], remote[1], type=socket.SOCK_DGRAM), RESOLVE_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            logger.warning("media of port %d: cannot resolve %s: %s", self.local_port, remote[0], exc or "timeout")
            self._report_lost("unresolvable")
            return
        address = str(infos[0][4][0])
        rtcp = (address, remote_rtcp[1]) if remote_rtcp is not None else None
        self._aim((address, remote[1]), rtcp, signalling_host, learn_any)

    def packet_counts(self) -> dict[tuple[str, str], int]:
        """The call's RTP packets so far by (op, payload name), across re-INVITEs (`MediaStream.packet_counts`)."""
        counts = self._earlier_packets.copy()
        if self.stream is not None:
            counts.update(self.stream.packet_counts())
        return dict(counts)

    def send_digits(self, digits: str, duration_ms: int = DIGIT_MS) -> None:
        """Queue digits; they go out on the cadence, one after the other (`MediaStream.send_digits`)."""
        if self.stream is not None:
            self.stream.send_digits(digits, duration_ms)
            if self.stream.sending_digits:
                self._digits_sent.clear()

    async def wait_digits_sent(self) -> None:
        """Returns once every digit queued by `send_digits` has gone out (at once when none is queued, and when
        the session closes)."""
        await self._digits_sent.wait()

    # -- the cadence -----------------------------------------------------------------------------------------

    def _on_frames(self, skipped: int, frames: int) -> None:
        stream = self.stream
        if stream is None:
            return
        self._receive(stream)
        # Slots the loop was too late for are not sent (that would be a burst) but are still received: the
        # caller's audio is waiting in the jitter buffer and the room side queues what it is given.
        stream.skip_frames(skipped)
        for slot in range(skipped + frames):
            if slot >= skipped:
                pcm = self.source() if self.source is not None else None  # runs on hold too: time passes
                if self.remote is None or not stream.config.sends:
                    stream.skip_frames(1)
                else:
                    if pcm is None:
                        pcm = np.zeros(stream.frame_samples, dtype=np.int16)
                    for datagram in stream.datagrams_for_frame(pcm):
                        self._rtp_socket.send(datagram, self.remote)
            received = stream.pull_audio()
            if self.sink is not None:
                self.sink(received)
        for digit in stream.take_digits():
            if self.on_digit is not None:
                self.on_digit(digit)
        if not stream.sending_digits:
            self._digits_sent.set()
        now = self._clock()
        if not self._timeout_reported and stream.timed_out(now):
            self._timeout_reported = True
            self._report_lost("timeout")
        self._frames_since_rtcp += skipped + frames
        if self._frames_since_rtcp * stream.ptime_ms >= RTCP_INTERVAL * 1000:
            self._frames_since_rtcp = 0
            self._send_rtcp(stream, now, bye=False)

    def _report_lost(self, reason: str) -> None:
        if self.on_media_lost is not None:
            self.on_media_lost(reason)

    def _on_cadence_error(self, exc: BaseException) -> None:
        logger.error("media of port %d failed: %r", self.local_port, exc)
        self._cadence = None
        self._report_lost("error")

    def _send_rtcp(self, stream: MediaStream, now: float, bye: bool) -> None:
        if self.remote_rtcp is None:
            return
        report = stream.rtcp_report(now, time.time(), bye=bye)
        (self._rtcp_socket or self._rtp_socket).send(report, self.remote_rtcp)

    # -- receiving -------------------------------------------------------------------------------------------

    def _receive(self, stream: MediaStream) -> None:
        """Takes what arrived; arrival times move from the kernel's Unix clock onto the session's clock."""
        now = self._clock()
        unix_to_session = now - time.time()
        tick = (id(self._cadence), self._cadence.ticks if self._cadence is not None else 0)
        latch = self.latch
        if latch is None:  # the peer's address is still being resolved
            self._collector.take(self._rtp_socket, tick)
            if self._rtcp_socket is not None:
                self._collector.take(self._rtcp_socket, tick)
            return
        for data, source, stamp in self._collector.take(self._rtp_socket, tick):
            arrival = now if stamp is None else min(now, stamp + unix_to_session)
            if self._rtcp_socket is None and is_rtcp(data):
                self._on_rtcp(stream, latch, data, source, arrival)
            elif latch.admits(source, arrival) and stream.receive_rtp(data, arrival) and latch.confirm(source, arrival):
                logger.info("RTP of port %d comes from %s:%d: sending there", self.local_port, *source)
                self.remote = source
                if self._rtcp_socket is None:
                    self.remote_rtcp = source
        if self._rtcp_socket is not None:
            for data, source, stamp in self._collector.take(self._rtcp_socket, tick):
                arrival = now if stamp is None else min(now, stamp + unix_to_session)
                self._on_rtcp(stream, latch, data, source, arrival)

    def _on_rtcp(self, stream: MediaStream, latch: RtpLatch, data: bytes, source: Address, arrival: float) -> None:
        if latch.admits_rtcp(source) and stream.receive_rtcp(data, arrival):
            self.remote_rtcp = source

    # -- the end ---------------------------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._digits_sent.set()
        if self._resolving is not None:
            self._resolving.cancel()
        try:
            if self._cadence is not None:
                self._cadence.unsubscribe(self._subscription)
                self._cadence = None
            if self.stream is not None:
                self._send_rtcp(self.stream, self._clock(), bye=True)
        finally:
            self._release()

    async def __aenter__(self) -> RtpSession:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _release(
    allocator: PortAllocator,
    port: int,
    collector: DatagramCollector,
    rtp: PolledUdpSocket,
    rtcp: PolledUdpSocket | None,
) -> None:
    for udp in (rtp, rtcp):
        if udp is not None:
            collector.remove(udp)
            udp.close()
    allocator.release(port)
