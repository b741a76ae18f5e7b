"""A real external RTP peer: sipp's RTP echo (`sipp -rtp_echo`) sends our own stream back, plain or SRTP,
and the session decodes its audio and digits from it."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator

import numpy as np
import pytest
from harness.ports import free_rtp_range, free_udp_port

from sipbridge.media.codecs import Pcm
from sipbridge.media.ports import PortAllocator
from sipbridge.media.session import RtpSession
from sipbridge.media.srtp import SrtpKeys, new_inline_key
from sipbridge.media.stream import StreamConfig

HOST = "127.0.0.1"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed"),
]


@pytest.fixture
async def sipp_echo() -> AsyncIterator[int]:
    """A sipp process echoing RTP on the port it yields (it waits as a UAS and takes no call)."""
    media_port = free_udp_port()
    process = await asyncio.create_subprocess_exec(
        "sipp", "-sn", "uas", "-i", HOST, "-p", str(free_udp_port()), "-mi", HOST, "-mp", str(media_port),
        "-rtp_echo", "-nostdin", "-timeout", "60s",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await _wait_for_echo(media_port)
        yield media_port
    finally:
        process.terminate()
        await process.wait()


async def _wait_for_echo(port: int) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        probe.setblocking(False)
        for _ in range(100):
            probe.sendto(b"\x80\x00\x00\x00" + bytes(8), (HOST, port))
            try:
                await asyncio.wait_for(loop.sock_recv(probe, 2048), 0.1)
                return
            except TimeoutError:
                continue
    raise AssertionError("sipp never echoed")


@pytest.mark.parametrize("encrypted", [False, True])
async def test_session_decodes_its_stream_echoed_by_sipp(sipp_echo: int, encrypted: bool) -> None:
    key = new_inline_key()
    srtp = SrtpKeys("AES_CM_128_HMAC_SHA1_80", key, key) if encrypted else None  # the echo returns our key
    ports = PortAllocator(*free_rtp_range(4))
    heard: list[Pcm] = []
    digits: list[str] = []
    position = [0]

    def tone() -> Pcm:
        t = (position[0] + np.arange(320)) / 16000
        position[0] += 320
        return (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)

    async with await RtpSession.open(ports, HOST) as session:
        session.source, session.sink, session.on_digit = tone, heard.append, digits.append
        session.start(StreamConfig("G722", 9, 101, srtp=srtp), (HOST, sipp_echo))
        session.send_digits("5")
        for _ in range(500):  # bounded: the echo's round trip decides, not a fixed sleep
            if digits and sum(np.abs(f).max() > 1000 for f in heard) >= 30:
                break
            await asyncio.sleep(0.02)
        assert session.stream is not None and session.stream.rejected == 0
        assert session.remote == (HOST, sipp_echo)
    assert digits == ["5"]
    audio = np.concatenate([f for f in heard if np.abs(f).max() > 1000][-20:]).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    assert np.fft.rfftfreq(len(audio), 1 / 16000)[np.argmax(spectrum)] == pytest.approx(440, abs=15)
