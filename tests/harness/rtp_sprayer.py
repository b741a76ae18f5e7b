"""A stranger on the network: valid RTP (a PCMU tone under its own SSRC) sent to ports of a bridge from another
loopback address, counting every datagram that comes back. For the RTP injection and hijack tests."""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from typing import cast

from harness.audio import sine
from harness.ports import LOOPBACK
from harness.rtp_phone import FRAME, PCMU_PT, RATE, ulaw_encode

STRANGER_HOST = "127.0.0.2"


class RtpSprayer(asyncio.DatagramProtocol):
    def __init__(self, freq: float, *, host: str = STRANGER_HOST, target_host: str = LOOPBACK) -> None:
        self.host = host
        self.target_host = target_host
        self.targets: list[int] = []
        """The ports each 20 ms tick sends one packet to."""
        self.sent = 0
        self.received = 0
        self._audio = ulaw_encode(sine(freq, 1.0, RATE, -10.0))
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self._seq = random.randrange(1 << 16)
        self._timestamp = random.randrange(1 << 32)
        self._ssrc = random.randrange(1 << 32)

    async def start(self, targets: list[int]) -> None:
        self.targets = targets
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, 0))
        self._task = asyncio.create_task(self._spray())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1

    async def _spray(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        position = 0
        while True:
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            payload = self._audio[position : position + FRAME]
            position = (position + FRAME) % len(self._audio)
            self._seq = (self._seq + 1) & 0xFFFF
            header = struct.pack("!BBHII", 0x80, PCMU_PT, self._seq, self._timestamp, self._ssrc)
            self._timestamp = (self._timestamp + FRAME) & 0xFFFFFFFF
            assert self._transport is not None
            for port in self.targets:
                self._transport.sendto(header + payload, (self.target_host, port))
                self.sent += 1

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._transport is not None:
            self._transport.close()
