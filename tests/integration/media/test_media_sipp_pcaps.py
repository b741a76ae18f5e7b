"""The sample captures that ship with sipp (Debian package sip-tester, /usr/share/sip-tester): a PCMA call
with 30 ms packets and one RFC 2833 key press per file. Decoded by a media stream with the capture's own
timing, and replayed over a real socket into a session."""

from __future__ import annotations

import asyncio
import socket
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from harness.ports import free_rtp_range

from sipbridge.media.codecs import Pcm
from sipbridge.media.ports import PortAllocator
from sipbridge.media.session import RtpSession
from sipbridge.media.stream import MediaStream, StreamConfig

SIPP_PCAP_DIRECTORY = Path("/usr/share/sip-tester")
LINKTYPE_ETHERNET = 1


@dataclass(frozen=True)
class UdpDatagram:
    time: float
    source_port: int
    destination_port: int
    payload: bytes


def read_udp(path: Path) -> list[UdpDatagram]:
    data = path.read_bytes()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        endian = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        endian = ">"
    else:
        raise ValueError(f"{path} is not a classic pcap file")
    (linktype,) = struct.unpack_from(endian + "I", data, 20)
    if linktype != LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: link type {linktype} is not Ethernet")
    datagrams = []
    offset = 24
    while offset + 16 <= len(data):
        seconds, micros, captured, _ = struct.unpack_from(endian + "IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        if struct.unpack_from("!H", frame, 12)[0] != 0x0800 or frame[14 + 9] != 17:
            continue  # not IPv4/UDP
        ip_header = (frame[14] & 0x0F) * 4
        udp = 14 + ip_header
        source, destination, length = struct.unpack_from("!HHH", frame, udp)
        datagrams.append(UdpDatagram(seconds + micros / 1e6, source, destination, frame[udp + 8 : udp + length]))
    return datagrams


with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the standard library's own G.711, as an independent reference (Python < 3.13)

pytestmark = pytest.mark.skipif(
    not (SIPP_PCAP_DIRECTORY / "g711a.pcap").exists(), reason="sipp's sample captures are not installed"
)
DTMF_FILES = {f"dtmf_2833_{d}.pcap": d for d in "0123456789"} | {
    "dtmf_2833_star.pcap": "*",
    "dtmf_2833_pound.pcap": "#",
}


def _replay(stream: MediaStream, datagrams: list[UdpDatagram], seconds: float) -> np.ndarray:
    """Delivers each datagram at its capture time and pulls one 20 ms frame per 20 ms, all on capture time."""
    start = datagrams[0].time
    pending = list(datagrams)
    frames = []
    for k in range(int(seconds / 0.02)):
        now = k * 0.02
        while pending and pending[0].time - start <= now:
            datagram = pending.pop(0)
            stream.receive_rtp(datagram.payload, datagram.time - start)
        frames.append(stream.pull_audio())
    return np.concatenate(frames)


def _reference_audio(datagrams: list[UdpDatagram]) -> np.ndarray:
    return np.frombuffer(b"".join(audioop.alaw2lin(d.payload[12:], 2) for d in datagrams), dtype=np.int16)


def _contains(haystack: np.ndarray, needle: np.ndarray) -> bool:
    candidates = np.flatnonzero(haystack[: len(haystack) - len(needle) + 1] == needle[0])
    return any(np.array_equal(haystack[c : c + len(needle)], needle) for c in candidates)


def test_pcma_capture_decodes_sample_exact() -> None:
    datagrams = read_udp(SIPP_PCAP_DIRECTORY / "g711a.pcap")
    assert len(datagrams) == 236 and all(d.payload[1] & 0x7F == 8 for d in datagrams)
    stream = MediaStream(StreamConfig("PCMA", 8, 101), 0.0)
    decoded = _replay(stream, datagrams, 7.6)
    reference = _reference_audio(datagrams)
    jitter = stream.jitter_buffer
    assert jitter.lost == 0 and jitter.late_or_duplicate == 0 and jitter.dropped_for_latency == 0
    assert jitter.underruns <= 2  # 30 ms packets pulled every 20 ms: the depth adapts in the first packets
    for second in (1, 3, 5):  # once adapted, every sample is the reference sample
        assert _contains(decoded, reference[second * 8000 : (second + 1) * 8000])
    assert stream.rejected == 0 and stream.take_digits() == []


@pytest.mark.parametrize(("name", "digit"), sorted(DTMF_FILES.items()))
def test_rfc2833_capture_gives_its_digit_once(name: str, digit: str) -> None:
    datagrams = read_udp(SIPP_PCAP_DIRECTORY / name)
    stream = MediaStream(StreamConfig("PCMU", 0, 101), 0.0)
    _replay(stream, datagrams, 0.5)
    assert stream.take_digits() == [digit]
    assert stream.rejected == 0


async def _send_paced(sender: socket.socket, datagrams: list[UdpDatagram], port: int) -> None:
    """Replays a capture with its own timing from `sender`, one caller's socket (the session latches to it)."""
    loop = asyncio.get_running_loop()
    start_capture, start_wall = datagrams[0].time, loop.time()
    for datagram in datagrams:
        await asyncio.sleep(max(0.0, start_wall + (datagram.time - start_capture) - loop.time()))
        sender.sendto(datagram.payload, ("127.0.0.1", port))


async def test_a_session_on_a_socket_decodes_the_captured_call_and_its_digits() -> None:
    audio = read_udp(SIPP_PCAP_DIRECTORY / "g711a.pcap")
    reference = _reference_audio(audio)
    ports = PortAllocator(*free_rtp_range(4))
    heard: list[Pcm] = []
    digits: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.bind(("127.0.0.1", 0))
        sender.setblocking(False)
        async with await RtpSession.open(ports, "127.0.0.1") as session:
            sink: Callable[[Pcm], None] = heard.append
            session.sink, session.on_digit = sink, digits.append
            session.start(StreamConfig("PCMA", 8, 101), ("127.0.0.1", 9))
            await _send_paced(sender, audio, session.local_port)
            for name in ("dtmf_2833_1.pcap", "dtmf_2833_pound.pcap"):
                await _send_paced(sender, read_udp(SIPP_PCAP_DIRECTORY / name), session.local_port)
            async with asyncio.timeout(30):  # the cadence takes the last packets on its next ticks
                while len(digits) < 2:  # noqa: ASYNC110 (the session's callback)
                    await asyncio.sleep(0.02)
    assert digits == ["1", "#"]
    # G.711 decoding is exact, so every frame played from a packet is a verbatim piece of the reference; only
    # frames around a late packet (concealment, silence) are not, and a busy machine can cause a few of those
    positions: dict[bytes, list[int]] = {}
    for i in range(len(reference) - 160):
        positions.setdefault(reference[i : i + 4].tobytes(), []).append(i)
    voiced = [f for f in heard if np.abs(f).max() > 100]
    verbatim = sum(
        any(np.array_equal(reference[p : p + 160], f) for p in positions.get(f[:4].tobytes(), []))
        for f in voiced
    )
    assert len(voiced) >= 300  # of the capture's 7 s
    assert verbatim >= 0.9 * len(voiced)
