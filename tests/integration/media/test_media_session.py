"""Two real RTP sessions on loopback sockets: audio and DTMF both ways, SRTP, symmetric RTP, RTCP, the media
timeout, and ports that always come back. Waits are bounded by events, never asserted on wall-clock time."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
from collections.abc import Callable

import numpy as np
import pytest
from harness.ports import free_rtp_range

from sipbridge.media.codecs import Pcm
from sipbridge.media.ports import PortAllocator
from sipbridge.media.session import RtpSession
from sipbridge.media.srtp import SrtpKeys, new_inline_key
from sipbridge.media.stream import StreamConfig

HOST = "127.0.0.1"
SUITE = "AES_CM_128_HMAC_SHA1_80"


def _tone_source(rate: int, freq: float) -> Callable[[], Pcm]:
    n = rate // 50
    position = [0]

    def next_frame() -> Pcm:
        t = (position[0] + np.arange(n)) / rate
        position[0] += n
        return (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)

    return next_frame


async def _until(condition: Callable[[], bool], within: float = 30.0) -> None:
    """Polls a condition the sessions make true in the background (bounded, so a failure cannot hang)."""
    try:
        async with asyncio.timeout(within):
            while not condition():  # noqa: ASYNC110 (the sessions' state, changed by the cadence)
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"condition never became true within {within} s") from None


class _Ticks:
    """Counts the frame slots a session has gone through (its sink is called once a slot, sending or not): a
    later slot proves the earlier ones' checks have run."""

    def __init__(self) -> None:
        self.count = 0

    def sink(self, pcm: Pcm) -> None:
        self.count += 1

    async def more(self, slots: int) -> None:
        target = self.count + slots
        await _until(lambda: self.count >= target)


class _Collector:
    def __init__(self, frames_wanted: int) -> None:
        self.frames: list[Pcm] = []
        self.digits: list[str] = []
        self.loud = asyncio.Event()
        self.frames_wanted = frames_wanted

    def sink(self, pcm: Pcm) -> None:
        if np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 1000:
            self.frames.append(pcm)
            if len(self.frames) >= self.frames_wanted:
                self.loud.set()

    def on_digit(self, digit: str) -> None:
        self.digits.append(digit)


@pytest.mark.parametrize("encrypted", [False, True])
async def test_two_sessions_exchange_audio_and_digits(encrypted: bool) -> None:
    ports = PortAllocator(*free_rtp_range(8))
    key_a, key_b = new_inline_key(), new_inline_key()
    srtp_a = SrtpKeys(SUITE, key_a, key_b) if encrypted else None
    srtp_b = SrtpKeys(SUITE, key_b, key_a) if encrypted else None
    async with await RtpSession.open(ports, HOST) as a, await RtpSession.open(ports, HOST) as b:
        heard_by_b, heard_by_a = _Collector(25), _Collector(25)
        a.source, b.source = _tone_source(8000, 440), _tone_source(8000, 1000)
        b.sink, b.on_digit = heard_by_b.sink, heard_by_b.on_digit
        a.sink = heard_by_a.sink
        a.start(StreamConfig("PCMU", 0, 101, srtp=srtp_a), (HOST, b.local_port))
        b.start(StreamConfig("PCMU", 0, 101, srtp=srtp_b), (HOST, a.local_port))
        a.send_digits("42#")
        assert a.stream is not None and a.stream.sending_digits
        await asyncio.wait_for(a.wait_digits_sent(), 5)  # the cadence says when the last event went out
        assert not a.stream.sending_digits
        await asyncio.wait_for(asyncio.gather(heard_by_b.loud.wait(), heard_by_a.loud.wait()), 10)
        await _until(lambda: len(heard_by_b.digits) >= 3)
        assert heard_by_b.digits == ["4", "2", "#"]
        for heard, freq in ((heard_by_b, 440), (heard_by_a, 1000)):
            audio = np.concatenate(heard.frames[-20:]).astype(np.float64)
            spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
            assert np.fft.rfftfreq(len(audio), 1 / 8000)[np.argmax(spectrum)] == pytest.approx(freq, abs=15)
        assert a.stream is not None and b.stream is not None
        assert a.stream.rejected == 0 and b.stream.rejected == 0
    assert ports.in_use == 0


async def test_symmetric_rtp_answers_where_the_packets_come_from() -> None:
    ports = PortAllocator(*free_rtp_range(8))
    async with await RtpSession.open(ports, HOST) as a, await RtpSession.open(ports, HOST) as b:
        heard_by_a = _Collector(10)
        a.sink = heard_by_a.sink
        b.source = _tone_source(8000, 1000)
        a.start(StreamConfig("PCMA", 8), (HOST, b.local_port))
        # b was told a wrong address (a NAT'ed peer's SDP): it must latch onto where a's packets come from
        b.start(StreamConfig("PCMA", 8), (HOST, 9))
        await asyncio.wait_for(heard_by_a.loud.wait(), 10)
        assert b.remote == (HOST, a.local_port)


async def test_ports_come_back_however_the_call_ends() -> None:
    ports = PortAllocator(*free_rtp_range(4))
    with pytest.raises(RuntimeError, match="call failed"):
        async with await RtpSession.open(ports, HOST) as session:
            session.start(StreamConfig("PCMU", 0), (HOST, 9))
            raise RuntimeError("call failed")
    assert ports.in_use == 0
    session = await RtpSession.open(ports, HOST)
    await session.close()
    await session.close()  # twice is harmless
    assert ports.in_use == 0
    with pytest.raises(RuntimeError):
        session.start(StreamConfig("PCMU", 0), (HOST, 9))


async def test_a_port_held_by_another_process_is_skipped() -> None:
    start, end = free_rtp_range(3)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((HOST, start))
        ports = PortAllocator(start, end)
        async with await RtpSession.open(ports, HOST) as session:
            assert session.local_port != start
            assert ports.in_use == 1
    assert ports.in_use == 0


async def test_media_timeout_is_reported_once_when_rtp_stops() -> None:
    offset = [0.0]

    def clock() -> float:
        return time.monotonic() + offset[0]

    ports = PortAllocator(*free_rtp_range(4))
    lost: list[str] = []
    reported = asyncio.Event()
    ticks = _Ticks()
    async with await RtpSession.open(ports, HOST, clock=clock) as session:

        def on_lost(reason: str) -> None:
            lost.append(reason)
            reported.set()

        session.on_media_lost = on_lost
        session.sink = ticks.sink
        session.start(StreamConfig("PCMU", 0, media_timeout_initial=30.0), (HOST, 9))
        await ticks.more(5)
        assert lost == []  # five slots checked, all within the 30 s
        offset[0] += 31.0  # no RTP for 31 s on the session's clock
        await asyncio.wait_for(reported.wait(), 30)
        offset[0] += 31.0
        await ticks.more(5)
        assert lost == ["timeout"]  # five more slots checked, past a second 30 s: still reported once


async def test_rtcp_sender_reports_reach_the_peer_on_a_separate_port_and_with_rtcp_mux() -> None:
    offset = [0.0]

    def clock() -> float:
        return time.monotonic() + offset[0]

    ports = PortAllocator(*free_rtp_range(8))
    a = await RtpSession.open(ports, HOST, clock=clock)
    b = await RtpSession.open(ports, HOST, rtcp_mux=True, clock=clock)
    c = await RtpSession.open(ports, HOST, rtcp_mux=True, clock=clock)
    try:
        a.start(StreamConfig("PCMU", 0), (HOST, 9), remote_rtcp=(HOST, 9))
        b.start(StreamConfig("PCMU", 0), (HOST, c.local_port))
        c.start(StreamConfig("PCMU", 0), (HOST, b.local_port))
        assert c.stream is not None
        stream = c.stream
        await _until(lambda: stream.last_rtp_at is not None)  # b's media reaches c
        offset[0] += 6.0  # past the 5 s report interval
        await _until(lambda: stream.received.last_sender_report_at is not None)
        assert a.remote_rtcp == (HOST, 9)
    finally:
        for session in (a, b, c):
            await session.close()
    assert ports.in_use == 0


async def test_a_session_on_hold_sends_nothing_and_resumes_on_reinvite() -> None:
    ports = PortAllocator(*free_rtp_range(8))
    async with await RtpSession.open(ports, HOST) as a, await RtpSession.open(ports, HOST) as b:
        heard_by_b = _Collector(10)
        b.sink = heard_by_b.sink
        a.source = _tone_source(8000, 440)
        ticks = _Ticks()
        a.sink = ticks.sink
        b.start(StreamConfig("PCMU", 0), (HOST, a.local_port))
        a.start(StreamConfig("PCMU", 0, direction="inactive"), (HOST, b.local_port))
        await ticks.more(15)  # fifteen slots in which a would have sent a packet
        assert a.stream is not None and a.stream.sent.packets == 0
        assert b.stream is not None and b.stream.last_rtp_at is None
        a.start(StreamConfig("PCMU", 0), (HOST, b.local_port))  # re-INVITE takes the call off hold
        await asyncio.wait_for(heard_by_b.loud.wait(), 10)


async def test_sessions_work_over_ipv6_loopback() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    ports = PortAllocator(port - port % 2, port - port % 2 + 7)
    async with await RtpSession.open(ports, "::1") as a, await RtpSession.open(ports, "::1") as b:
        heard_by_b = _Collector(10)
        b.sink = heard_by_b.sink
        a.source = _tone_source(8000, 440)
        a.start(StreamConfig("PCMA", 8), ("::1", b.local_port))
        b.start(StreamConfig("PCMA", 8), ("::1", a.local_port))
        await asyncio.wait_for(heard_by_b.loud.wait(), 10)
        assert b.remote == ("::1", a.local_port)


async def test_a_session_dropped_without_close_gives_its_port_back() -> None:
    ports = PortAllocator(*free_rtp_range(4))
    session = await RtpSession.open(ports, HOST)
    assert ports.in_use == 1
    del session
    gc.collect()
    assert ports.in_use == 0


async def test_a_host_name_in_the_sdp_is_resolved_once_off_the_loop() -> None:
    ports = PortAllocator(*free_rtp_range(8))
    async with await RtpSession.open(ports, HOST) as a, await RtpSession.open(ports, HOST) as b:
        heard_by_a = _Collector(10)
        a.sink = heard_by_a.sink
        b.source = _tone_source(8000, 1000)
        a.start(StreamConfig("PCMU", 0), (HOST, b.local_port))
        b.start(StreamConfig("PCMU", 0), ("localhost", a.local_port))
        await asyncio.wait_for(heard_by_a.loud.wait(), 10)
        assert b.remote is not None and b.remote[0] in ("127.0.0.1", "::1")


async def test_an_unresolvable_host_name_ends_the_media() -> None:
    ports = PortAllocator(*free_rtp_range(4))
    async with await RtpSession.open(ports, HOST) as session:
        lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        session.on_media_lost = lambda reason: lost.done() or lost.set_result(reason)
        session.start(StreamConfig("PCMU", 0), ("no-such-host.invalid", 4000))
        assert await asyncio.wait_for(lost, 10) == "unresolvable"
        assert session.remote is None
