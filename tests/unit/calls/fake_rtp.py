"""The RTP side of the call flows without sockets: sessions on a real `PortAllocator` (so a test sees every port
come back) that keep the stream configs the flow started, and time the media timeout and the sending of DTMF on
the loop's clock as `sipbridge.media.session.RtpSession` does. Once started, a session runs the call's cadence:
every ptime it takes a frame from ``source`` (prompts and tones play out, the mix is read) and hands the phone's
silence to ``sink``, so keep calls with media short in virtual time (a minute is 3000 frames).

A session hears the phone from the start unless the node was told otherwise (``silent``); `go_silent` stops
the phone's RTP, and the session reports "timeout" after the stream's ``media_timeout`` (its
``media_timeout_initial`` when nothing was ever heard), unless the stream expects nothing (hold, inactive)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
from changes import Changes

from sipbridge.media.codecs import KNOWN_CODECS, Pcm
from sipbridge.media.ports import PortAllocator
from sipbridge.media.stream import MediaStream, StreamConfig
from sipbridge.media.udp import Address

DIGIT_SECONDS = 0.16
"""How long one queued digit takes to go out (100 ms of events, then a pause, as the stream sends them)."""
PACKETS = {("recv", "PCMU"): 50, ("send", "PCMU"): 50}
"""What every fake session reports it carried, so the metrics' fold of a call's packets can be counted."""


class FakeRtp:
    def __init__(self, ports: PortAllocator, port: int, *, hears_phone: bool) -> None:
        self._ports = ports
        self.local_port = port
        self.source: Callable[[], Pcm | None] | None = None
        self.sink: Callable[[Pcm], None] | None = None
        self.on_digit: Callable[[str], None] | None = None
        self.on_media_lost: Callable[[str], None] | None = None
        self.configs: list[StreamConfig] = []
        self.remotes: list[Address] = []
        self.digits_sent: list[tuple[float, str]] = []
        """(loop time, digits) of each `send_digits`."""
        self.frames_to_phone = 0
        """Frames `source` gave (a prompt, a tone or the room's mix)."""
        self.closed = False
        self.started_at = 0.0
        """When media started (the loop's clock)."""
        self.stream: MediaStream | None = None
        """No sans-IO stream: the fake carries no packets, so the quality watch samples nothing."""
        self._hears_phone = hears_phone
        self._heard = hears_phone
        self._timeout: asyncio.TimerHandle | None = None
        self._sending: asyncio.TimerHandle | None = None
        self._tick: asyncio.TimerHandle | None = None
        self._digits_out = asyncio.Event()
        self._digits_out.set()
        self.changes = Changes()

    def start(
        self,
        config: StreamConfig,
        remote: Address,
        remote_rtcp: Address | None = None,
        *,
        signalling_host: str | None = None,
        learn_any: bool = False,
    ) -> None:
        assert not self.closed
        if not self.configs:
            self.started_at = asyncio.get_running_loop().time()
        self.configs.append(config)
        self.remotes.append(remote)
        self.changes.notify()
        self._arm()
        if self._tick is None:
            self._tick = asyncio.get_running_loop().call_later(config.ptime_ms / 1000, self._frame)

    def packet_counts(self) -> dict[tuple[str, str], int]:
        return dict(PACKETS) if self.configs else {}

    def send_digits(self, digits: str, duration_ms: int = 100) -> None:
        if not self.configs:
            return  # no stream yet: nothing is queued, as in RtpSession
        loop = asyncio.get_running_loop()
        self.digits_sent.append((loop.time(), digits))
        self._digits_out.clear()
        self._sending = loop.call_later(DIGIT_SECONDS * len(digits), self._digits_out.set)

    async def wait_digits_sent(self) -> None:
        await self._digits_out.wait()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for timer in (self._timeout, self._sending, self._tick):
            if timer is not None:
                timer.cancel()
        self._digits_out.set()
        self._ports.release(self.local_port)

    # -- the phone's side, for the tests --------------------------------------------------------------------------

    def go_silent(self) -> None:
        """The phone's RTP stops now."""
        self._hears_phone = False
        self._arm()

    async def until_frames_to_phone(self, count: int) -> None:
        await self.changes.until(lambda: self.frames_to_phone >= count)

    def phone_digit(self, digit: str) -> None:
        """An RFC 4733 digit from the phone."""
        assert self.on_digit is not None
        self.on_digit(digit)

    def _arm(self) -> None:
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        config = self.configs[-1] if self.configs else None
        if config is None or self._hears_phone or not config.expects_media:
            return
        wait = config.media_timeout if self._heard else config.media_timeout_initial
        self._timeout = asyncio.get_running_loop().call_later(wait, self._lost)

    def _frame(self) -> None:
        """One ptime of the call's cadence: a frame towards the phone, the phone's (silent) frame towards the room."""
        config = self.configs[-1]
        if self.source is not None and self.source() is not None:
            self.frames_to_phone += 1
            self.changes.notify()
        if self.sink is not None:
            rate = KNOWN_CODECS[config.codec.lower()].sample_rate
            self.sink(np.zeros(rate * config.ptime_ms // 1000, dtype=np.int16))
        self._tick = asyncio.get_running_loop().call_later(config.ptime_ms / 1000, self._frame)

    def _lost(self) -> None:
        if self.on_media_lost is not None:
            self.on_media_lost("timeout")


class FakeRtpSessions:
    """The node's `RtpOpener`: one fake session per port pair of ``ports``, newest last."""

    def __init__(self, ports: PortAllocator) -> None:
        self.ports = ports
        self.sessions: list[FakeRtp] = []
        self.silent = False
        """Sessions opened from now on never hear the phone."""

    @property
    def last(self) -> FakeRtp:
        return self.sessions[-1]

    async def __call__(self) -> FakeRtp:
        session = FakeRtp(self.ports, self.ports.allocate(), hears_phone=not self.silent)
        self.sessions.append(session)
        return session
