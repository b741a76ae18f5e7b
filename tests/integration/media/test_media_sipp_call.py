"""A live call from sipp's own built-in `uac_pcap` scenario: sipp dials, our minimal answering side (just
enough SIP to answer, acknowledge and hang up) gives it a session's port, and sipp plays its sample PCMA
recording and an RFC 2833 '1' into the session in real time. The SIP here is a test fixture; the object
under test is the media session."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from harness.ports import free_rtp_range, free_udp_port

from sipbridge.media.codecs import Pcm, create_codec
from sipbridge.media.ports import PortAllocator
from sipbridge.media.session import RtpSession
from sipbridge.media.stream import StreamConfig

HOST = "127.0.0.1"
CAPTURES = Path("/usr/share/sip-tester")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("sipp") is None or not (CAPTURES / "g711a.pcap").exists(),
        reason="sipp or its sample captures are not installed",
    ),
]


def _answer(request: str, to_tag: str, body: str = "") -> bytes:
    """A 200 OK echoing the request's Via, From, To (with our tag), Call-ID and CSeq."""
    headers: dict[str, str] = {}
    for line in request.split("\r\n")[1:]:
        if not line:
            break
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    to = headers["to"] if ";tag=" in headers["to"] else f"{headers['to']};tag={to_tag}"
    lines = [
        "SIP/2.0 200 OK",
        f"Via: {headers['via']}",
        f"From: {headers['from']}",
        f"To: {to}",
        f"Call-ID: {headers['call-id']}",
        f"CSeq: {headers['cseq']}",
        f"Contact: <sip:test@{HOST}>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


async def test_sipp_plays_its_recording_and_a_digit_into_a_session(tmp_path: Path) -> None:
    (tmp_path / "pcap").mkdir()
    for name in ("g711a.pcap", "dtmf_2833_1.pcap"):
        (tmp_path / "pcap" / name).symlink_to(CAPTURES / name)
    loop = asyncio.get_running_loop()
    ports = PortAllocator(*free_rtp_range(4))
    heard: list[Pcm] = []
    digits: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sip:
        sip.bind((HOST, 0))
        sip.setblocking(False)
        sipp = await asyncio.create_subprocess_exec(
            "sipp", "-sn", "uac_pcap", f"{HOST}:{sip.getsockname()[1]}", "-i", HOST, "-p", str(free_udp_port()),
            "-m", "1", "-nostdin", "-timeout", "40s", "-timeout_error",
            cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with await RtpSession.open(ports, HOST) as session:
                session.sink, session.on_digit = heard.append, digits.append
                while True:
                    data, sipp_address = await asyncio.wait_for(loop.sock_recvfrom(sip, 65535), 20)
                    request = data.decode()
                    if request.startswith("INVITE"):
                        media_line = re.search(r"m=audio (\d+)", request)
                        assert media_line is not None
                        media_port = int(media_line.group(1))
                        sdp = (
                            f"v=0\r\no=- 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
                            f"m=audio {session.local_port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
                            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
                        )
                        session.start(StreamConfig("PCMA", 8, 101), (HOST, media_port))
                        await loop.sock_sendto(sip, _answer(request, "media-test", sdp), sipp_address)
                    elif request.startswith("BYE"):
                        await loop.sock_sendto(sip, _answer(request, "media-test"), sipp_address)
                        break
        finally:
            try:
                _, errors = await asyncio.wait_for(sipp.communicate(), 30)
            except TimeoutError:
                sipp.kill()  # never leave it behind
                await sipp.wait()
                raise
    assert sipp.returncode == 0, errors.decode()[-2000:]
    assert digits == ["1"]
    # every frame played from a packet is a verbatim piece of the recording (G.711 decoding is exact)
    reference = _recording(CAPTURES / "g711a.pcap")
    positions: dict[bytes, list[int]] = {}
    for i in range(len(reference) - 160):
        positions.setdefault(reference[i : i + 4].tobytes(), []).append(i)
    voiced = [f for f in heard if np.abs(f).max() > 100]
    verbatim = sum(
        any(np.array_equal(reference[p : p + 160], f) for p in positions.get(f[:4].tobytes(), []))
        for f in voiced
    )
    assert len(voiced) >= 300 and verbatim >= 0.9 * len(voiced)


def _recording(path: Path) -> np.ndarray:
    """The capture's RTP payloads decoded in order (Ethernet/IPv4/UDP/RTP, 12-byte RTP headers)."""
    data = path.read_bytes()
    offset, payloads = 24, []
    while offset + 16 <= len(data):
        captured = int.from_bytes(data[offset + 8 : offset + 12], "little")
        frame = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        ip_header = (frame[14] & 0x0F) * 4
        payloads.append(frame[14 + ip_header + 8 + 12 :])
    codec = create_codec("PCMA")
    return np.concatenate([codec.decode(p) for p in payloads])
