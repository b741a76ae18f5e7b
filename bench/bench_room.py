"""Calls per process on the room side: CPU of N RoomParticipants in one process, each in its own room with an
agent playing a tone to it, while it pushes the caller's audio (20 ms frames, 48 kHz unless --rate) into its room.

Three implementations of the same call are compared: `sipbridge` (the SDK room transport, whose audio events go
through the FfiRouter), `sdk` (the SDK's own AudioStream and AudioSource.capture_frame, the baseline) and `lean`
(the lean room transport: no SDK at all). `--profile` prints where the asyncio thread spent the measured window
(cProfile, cumulative), for finding the next thing to cut.

This is a call's steady state on the room side: one AudioStream in (50 frames/s) and one capture_frame out
(50 frames/s) per call. The agents run in a separate child process (a real SDK participant per room) so only
the bridge's side is measured. Besides CPU, the SDK's FFI event fan-out is counted: FFI events per second and
how many queue subscribers each one is offered to (livekit 1.2.0 offers every event to every subscriber).

The machine's load average is printed beside each row: on a shared machine the figures are only as good as
the CPU left to them (frames in/s per call below 50 means the process could not keep up).

Bounded: each N runs `--seconds` of measurement after all calls hear audio; the server and the agents' process
are stopped at the end, also on errors.

Run: .venv/bin/python bench/bench_room.py [--calls 5 10 20] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import math
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.rtc._ffi_client import FfiQueue

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness.audio import sine
from harness.processes import LiveKitServer

from sipbridge.media.codecs import Pcm
from sipbridge.room import (
    LiveKitCredentials,
    ParticipantSpec,
    RoomParticipant,
    RoomTransport,
    TrackKey,
    create_participant,
    sip_participant_token,
)
from sipbridge.room.ffi_router import FfiRouter

AGENT_FRAME_MS = 100  # the agents' side is not measured; larger frames keep its load off the shared cores
WARM_UP_LIMIT_S = 120  # joining and subscribing N calls takes long on a loaded machine
ROOMS_PER_AGENT_PROCESS = 5  # the agents' processes suffer the same fan-out; small groups keep them real-time


class BenchFailed(Exception):
    pass


class CountingSink:
    """Counts frames per call; stands where the media mixer is."""

    def __init__(self) -> None:
        self.frames = 0
        self.heard_a_second = asyncio.Event()

    def add_input(self, key: TrackKey) -> CountingSink:
        return self

    def remove_input(self, key: TrackKey) -> None:
        pass

    def push(self, pcm: Pcm) -> None:
        self.frames += 1
        if self.frames == 50:
            self.heard_a_second.set()


class SdkCall:
    """The baseline: the same call on the SDK's own AudioStream and AudioSource.capture_frame."""

    def __init__(self, credentials: LiveKitCredentials, spec: ParticipantSpec, sink: CountingSink, rate: int) -> None:
        self._rate = rate
        self._credentials = credentials
        self._spec = spec
        self._sink = sink
        self._room = rtc.Room()
        self._source = rtc.AudioSource(rate, 1, queue_size_ms=100)
        self._readers: set[asyncio.Task[None]] = set()
        self._remote_audio = asyncio.Event()
        self._room.on("track_subscribed", self._on_track_subscribed)

    async def join(self) -> None:
        await self._room.connect(self._credentials.ws_url, sip_participant_token(self._credentials, self._spec))
        track = rtc.LocalAudioTrack.create_audio_track("phone", self._source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self._room.local_participant.publish_track(track, options)

    async def push(self, frame: Pcm) -> None:
        await self._source.capture_frame(rtc.AudioFrame(frame.tobytes(), self._rate, 1, len(frame)))

    async def wait_remote_audio(self) -> None:
        await self._remote_audio.wait()

    async def leave(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await self._source.aclose()
        await self._room.disconnect()

    def _on_track_subscribed(self, track: rtc.Track, *_: object) -> None:
        stream = rtc.AudioStream(track, sample_rate=self._rate, num_channels=1, frame_size_ms=20)
        self._readers.add(asyncio.create_task(self._read(stream)))
        self._remote_audio.set()

    async def _read(self, stream: rtc.AudioStream) -> None:
        try:
            async for event in stream:
                self._sink.push(np.frombuffer(event.frame.data, dtype=np.int16))
        finally:
            await stream.aclose()


Call = RoomParticipant | SdkCall
IMPLEMENTATIONS = ("sdk", "sipbridge", "lean")


def _new_call(
    implementation: str, credentials: LiveKitCredentials, spec: ParticipantSpec, sink: CountingSink, rate: int
) -> Call:
    if implementation == "sdk":
        return SdkCall(credentials, spec, sink, rate)
    transport: RoomTransport = "lean" if implementation == "lean" else "sdk"
    return create_participant(transport, credentials, spec, sink, publish_rate=rate, subscribe_rate=rate)


class FanOutCounter:
    """Counts the FFI events that reach the SDK's fan-out (FfiQueue.put) and the subscribers each is offered to."""

    def __init__(self) -> None:
        self.events = 0
        self.offers = 0
        self._original = FfiQueue.put

        def counting_put(queue: FfiQueue[object], item: object) -> None:
            self.events += 1
            self.offers += len(queue._subscribers)
            self._original(queue, item)

        FfiQueue.put = counting_put  # type: ignore[method-assign,assignment]

    def remove(self) -> None:
        FfiQueue.put = self._original  # type: ignore[method-assign]


async def _play(phone: Call, stop: asyncio.Event, rate: int) -> None:
    """The caller's audio on a 20 ms cadence (as the RTP side delivers it), not faster than real time."""
    tone = sine(440.0, 1.0, rate, dbfs=-20.0)
    frame = rate // 50
    start = time.monotonic()
    sent = 0
    while not stop.is_set():
        offset = (sent * frame) % rate
        await phone.push(tone[offset : offset + frame])
        sent += 1
        delay = start + sent * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def _measure(
    server: LiveKitServer, implementation: str, calls: int, seconds: float, rate: int, profile: bool
) -> dict[str, float]:
    credentials = LiveKitCredentials(server.ws_url, server.api_key, server.api_secret)
    rooms = [f"bench-{implementation}-{calls}-{i}" for i in range(calls)]  # fresh rooms for every run
    agent_groups = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "agents",
            server.ws_url,
            server.api_key,
            server.api_secret,
            *rooms[first : first + ROOMS_PER_AGENT_PROCESS],
            stdin=asyncio.subprocess.PIPE,
        )
        for first in range(0, calls, ROOMS_PER_AGENT_PROCESS)
    ]
    sinks = [CountingSink() for _ in rooms]
    phones = [
        _new_call(implementation, credentials, ParticipantSpec(room=room, identity=f"phone-{i}"), sink, rate)
        for i, (room, sink) in enumerate(zip(rooms, sinks, strict=True))
    ]
    stop = asyncio.Event()
    players: list[asyncio.Task[None]] = []
    try:
        await asyncio.gather(*(phone.join() for phone in phones))
        players = [asyncio.create_task(_play(phone, stop, rate)) for phone in phones]
        try:
            async with asyncio.timeout(WARM_UP_LIMIT_S):
                await asyncio.gather(*(sink.heard_a_second.wait() for sink in sinks))
        except TimeoutError:
            heard = sum(sink.heard_a_second.is_set() for sink in sinks)
            raise BenchFailed(
                f"only {heard} of {calls} calls heard a second of their agent within {WARM_UP_LIMIT_S} s"
            ) from None
        await asyncio.sleep(1.0)  # past the start-up transients
        counter = FanOutCounter()
        router = FfiRouter.get() if implementation != "lean" else None  # lean never loads the SDK's FFI
        routed_before = router.routed_events if router is not None else 0
        frames_before = sum(sink.frames for sink in sinks)
        profiler = cProfile.Profile() if profile else None
        cpu_before, loop_before, wall_before = time.process_time(), time.thread_time(), time.monotonic()
        if profiler is not None:
            profiler.enable()
        await asyncio.sleep(seconds)
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        cpu = time.process_time() - cpu_before
        loop_cpu = time.thread_time() - loop_before
        wall = time.monotonic() - wall_before
        events, offers = counter.events, counter.offers
        routed = router.routed_events - routed_before if router is not None else 0
        counter.remove()
        frames = sum(sink.frames for sink in sinks) - frames_before
    finally:
        stop.set()
        await asyncio.gather(*players, return_exceptions=True)
        await asyncio.gather(*(phone.leave() for phone in phones), return_exceptions=True)
        for agents in agent_groups:
            if agents.stdin is not None:
                agents.stdin.close()
        for agents in agent_groups:
            try:
                await asyncio.wait_for(agents.wait(), 20)
            except TimeoutError:
                agents.kill()
                await agents.wait()
    return {
        "calls": calls,
        "cpu_share": cpu / wall,
        "cpu_ms_per_call_second": 1000.0 * cpu / wall / calls,
        "loop_ms_per_call_second": 1000.0 * loop_cpu / wall / calls,
        "frames_in_per_call_second": frames / wall / calls,
        "ffi_events_per_second": events / wall,
        "routed_events_per_second": routed / wall,
        "offers_per_event": offers / events if events else math.nan,
    }


async def _agents(url: str, api_key: str, api_secret: str, rooms: list[str]) -> None:
    """Child process: one participant per room playing a 1 kHz tone, until stdin closes."""
    from harness.participant import TestParticipant

    agents = [
        TestParticipant(url, api_key, api_secret, room, f"agent-{i}", frame_ms=AGENT_FRAME_MS)
        for i, room in enumerate(rooms)
    ]
    await asyncio.gather(*(agent.connect() for agent in agents))
    await asyncio.gather(*(agent.publish_tone(1000.0) for agent in agents))
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await asyncio.gather(*(agent.disconnect() for agent in agents), return_exceptions=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "agents":
        url, api_key, api_secret, *rooms = sys.argv[2:]
        asyncio.run(_agents(url, api_key, api_secret, rooms))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--implementations", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS))
    parser.add_argument("--rate", type=int, default=48000, help="rate of the frames pushed and received (Hz)")
    parser.add_argument("--profile", action="store_true", help="cProfile the asyncio thread over each window")
    args = parser.parse_args()
    print(
        f"livekit rtc {rtc.__version__}; one process, N calls in N rooms, 50 frames/s each way per call "
        f"at {args.rate} Hz"
    )
    print(
        "impl       calls  cpu(core)  cpu ms/s/call  asyncio-thread ms/s/call  frames in/s/call  "
        "fan-out events/s  subscribers per event  routed events/s  load avg"
    )
    with tempfile.TemporaryDirectory() as workdir, LiveKitServer(Path(workdir), log_level="warn") as server:
        for calls in args.calls:
            for implementation in args.implementations:
                try:
                    r = asyncio.run(_measure(server, implementation, calls, args.seconds, args.rate, args.profile))
                except BenchFailed as failure:
                    print(f"{implementation:9s}  {calls:5d}  failed: {failure}", flush=True)
                    continue
                print(
                    f"{implementation:9s}  {calls:5d}  {r['cpu_share']:9.2f}  {r['cpu_ms_per_call_second']:13.1f}  "
                    f"{r['loop_ms_per_call_second']:24.1f}  {r['frames_in_per_call_second']:16.1f}  "
                    f"{r['ffi_events_per_second']:16.0f}  {r['offers_per_event']:21.1f}  "
                    f"{r['routed_events_per_second']:15.0f}  {os.getloadavg()[0]:8.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
