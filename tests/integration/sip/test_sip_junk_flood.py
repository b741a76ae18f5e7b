"""A flood of junk at a running bridge's SIP port: each kind of bad datagram is answered or dropped as it should,
the bridge stays responsive, and its log grows by a few summary lines, not a line per datagram.

The flood goes out in bursts of BURST, each sent once the bridge has counted the previous ones: as fast as the
bridge takes them, and never faster than the kernel's socket buffer holds, so a loaded machine drops none and the
bridge must count every datagram."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from pathlib import Path

import pytest
from harness.bridge import BridgeProcess
from harness.sip_client import RawSipClient

pytestmark = pytest.mark.integration

DATAGRAMS = 6000
SOURCES = 30
BURST = 500


def junk(rng: random.Random, n: int) -> bytes:
    """Three kinds in turn: random bytes, a request cut before its headers end, a request with a broken
    header (that one parses far enough to be answered 400)."""
    kind = n % 3
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 600))
    if kind == 1:
        return b"INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK" + str(n).encode()
    return (
        f"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKj{n}\r\n"
        f"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: junk{n}\r\nCSeq: one OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def wait_for(condition: object, what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.2)


def malformed(bridge: BridgeProcess) -> float:
    return bridge.metrics()["sipbridge_sip_malformed_messages"]


async def test_junk_flood_logs_a_few_lines_and_the_bridge_answers_after(tmp_path: Path) -> None:
    with BridgeProcess(tmp_path / "bridge") as bridge:
        log_before = len(bridge.log_text().encode())
        rng = random.Random(7)
        sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(SOURCES)]
        try:
            for i, sock in enumerate(sockets):
                sock.bind((f"127.0.0.{10 + i}", 0))
            for n in range(DATAGRAMS):
                sockets[n % SOURCES].sendto(junk(rng, n), ("127.0.0.1", bridge.sip_port))
                if n % BURST == BURST - 1:
                    await wait_for(lambda sent=n + 1: malformed(bridge) >= sent, f"{n + 1} datagrams counted")
        finally:
            for sock in sockets:
                sock.close()

        async with RawSipClient(bridge.sip_port) as sip:
            options = sip.request("OPTIONS", f"sip:x@127.0.0.1:{bridge.sip_port}", to_user="x", from_user="probe")
            assert (await sip.final(options)).status == 200  # still answering

        assert malformed(bridge) == DATAGRAMS  # every one, each once
        await wait_for(lambda: "in the last 10 s" in bridge.log_text(), "the window's summary")
        grown = bridge.log_text().encode()[log_before:]
        lines = [line for line in grown.decode(errors="replace").splitlines() if "malformed SIP" in line]
        assert 2 <= len(lines) <= 9, lines
        assert len(grown) < 10_000
