"""CPU cost of one call's media path per 20 ms frame, both directions, for G.711 and G.722 (and Opus).

Two measurements:

* ``pipeline``: a tight loop doing, per frame, exactly what a call does: receive a datagram from a real UDP
  socket, parse it into the jitter buffer, pop and decode a frame, push one room participant's frame into the
  call's mixer, mix, encode, packetise, and send it on a real UDP socket. Optionally also resample the caller's
  audio to 48 kHz for the room (not needed when the room side is asked for the codec's rate).
* ``ticks``: N real sessions (sockets, streams, mixers) whose per-frame work is driven by hand, one pass
  per 20 ms of packets, with no event loop in the way: the session path's own cost, steady under load.
* ``sessions``: N concurrent calls, each a real RtpSession on loopback on the shared 20 ms asyncio cadence,
  fed at real time by peers in another process (which also read what the bridge sends); the bridge
  process's CPU time over the run divided by calls x frames. This one includes the event loop's work and
  the kernel's loopback delivery charged to the bridge's send calls.

Run: .venv/bin/python bench/bench_media.py [--calls 50] [--seconds 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import random
import socket
import time

import numpy as np

from sipbridge.media.cadence import SharedCadence
from sipbridge.media.codecs import Pcm
from sipbridge.media.mixer import Mixer
from sipbridge.media.ports import PortAllocator
from sipbridge.media.resample import FrameResampler
from sipbridge.media.session import RtpSession
from sipbridge.media.stream import MediaStream, StreamConfig

CODECS = [("PCMU", 0), ("PCMA", 8), ("G722", 9), ("opus", 111)]


def _speechlike(rate: int, seconds: float) -> Pcm:
    rng = np.random.default_rng(1)
    t = np.arange(int(rate * seconds)) / rate
    voice = np.sin(2 * np.pi * 180 * t) * 4000 + np.sin(2 * np.pi * 900 * t) * 2000
    noisy: Pcm = (voice + rng.normal(0, 500, len(t))).astype(np.int16)
    return noisy


def _peer_packets(codec: str, pt: int, frames: int) -> list[bytes]:
    peer = MediaStream(StreamConfig(codec, pt, 101), 0.0, random.Random(7))
    audio = _speechlike(peer.codec.sample_rate, frames / 50)
    n = peer.frame_samples
    return [datagram for i in range(frames) for datagram in peer.datagrams_for_frame(audio[i * n : (i + 1) * n])]


def bench_pipeline(codec: str, pt: int, frames: int, to_48k: bool) -> float:
    packets = _peer_packets(codec, pt, frames)
    stream = MediaStream(StreamConfig(codec, pt, 101), 0.0, random.Random(3))
    mixer = Mixer(stream.codec.sample_rate)
    participant = mixer.add_input()
    room_audio = _speechlike(stream.codec.sample_rate, frames / 50)
    to_room = FrameResampler(stream.codec.sample_rate, 48000, 960) if to_48k else None
    n = stream.frame_samples
    peer_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bridge_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer_socket.bind(("127.0.0.1", 0))
    bridge_socket.bind(("127.0.0.1", 0))
    bridge_address, peer_address = bridge_socket.getsockname(), peer_socket.getsockname()
    elapsed = 0.0
    for i in range(frames):
        peer_socket.sendto(packets[i], bridge_address)  # the peer's part: not counted
        if i % 50 == 0:  # drain what the bridge sent to the peer, uncounted
            peer_socket.setblocking(False)
            try:
                while True:
                    peer_socket.recv(2048)
            except BlockingIOError:
                pass
            peer_socket.setblocking(True)
        started = time.process_time()
        data = bridge_socket.recv(2048)  # receive
        stream.receive_rtp(data, i * 0.02)  # parse, jitter buffer
        caller = stream.pull_audio()  # jitter pop, decode
        if to_room is not None:
            to_room.push(caller)
        participant.push(room_audio[i * n : (i + 1) * n])  # the room's audio arrives
        for datagram in stream.datagrams_for_frame(mixer.mix_frame()):  # mix, encode, send
            bridge_socket.sendto(datagram, peer_address)
        elapsed += time.process_time() - started
    peer_socket.close()
    bridge_socket.close()
    return elapsed / frames * 1e6


class _RoomFeed:
    """One room participant speaking into the call's mixer, a frame per frame."""

    def __init__(self, rate: int) -> None:
        self.mixer = Mixer(rate)
        self.participant = self.mixer.add_input()
        self.frame = _speechlike(rate, 0.02)

    def next_frame(self) -> Pcm:
        self.participant.push(self.frame)
        return self.mixer.mix_frame()


async def _run_ticks(codec: str, pt: int, calls: int, ticks: int) -> float:
    """CPU seconds of ``ticks`` passes over ``calls`` real sessions driven by hand (no event-loop timing)."""
    packets = _peer_packets(codec, pt, ticks)
    ports = PortAllocator(32000, 32000 + 4 * calls + 20)
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as drain,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer,
    ):
        drain.bind(("127.0.0.1", 0))
        drain.setblocking(False)
        sessions = []
        cadence = SharedCadence.for_loop(0.02)
        for _ in range(calls):
            session = await RtpSession.open(ports, "127.0.0.1")
            config = StreamConfig(codec, pt, 101)
            session.source = _RoomFeed(MediaStream(config, 0.0).codec.sample_rate).next_frame
            session.start(config, drain.getsockname())
            sessions.append(session)
        for session in sessions:  # the ticks are driven below, not by the timer
            cadence.unsubscribe(session._subscription)
        cpu = 0.0
        for i in range(ticks):
            for session in sessions:  # the peers' part, not counted
                peer.sendto(packets[i], ("127.0.0.1", session.local_port))
            with contextlib.suppress(BlockingIOError):
                while True:
                    drain.recv(2048)
            started = time.process_time()
            cadence.ticks += 1
            for session in sessions:
                session._on_frames(0, 1)
            cpu += time.process_time() - started
        for session in sessions:
            await session.close()
    return cpu


def bench_ticks(codec: str, pt: int, calls: int, ticks: int = 300) -> float:
    return asyncio.run(_run_ticks(codec, pt, calls, ticks)) / (calls * ticks) * 1e6


def _peers_process(ports: list[int], packets: list[bytes], frames: int, drain_port: int, start_at: float) -> None:
    """Runs in its own process, so its CPU is not the bridge's: sends one packet per port every 20 ms
    and reads (and discards) what the bridge sends back."""
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    drain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    drain.bind(("127.0.0.1", drain_port))
    drain.setblocking(False)
    for i in range(frames):
        time.sleep(max(0.0, start_at + i * 0.02 - time.monotonic()))
        for port in ports:
            sender.sendto(packets[i % len(packets)], ("127.0.0.1", port))
        try:
            while True:
                drain.recv(2048)
        except BlockingIOError:
            pass


async def _run_sessions(codec: str, pt: int, calls: int, seconds: float) -> tuple[float, int, int]:
    """CPU seconds the bridge process spent serving ``calls`` sessions for ``seconds``, and the packets
    they sent and received meanwhile."""
    frames = int((seconds + 1) * 50)  # the peers go on past the measured window
    packets = _peer_packets(codec, pt, 250)
    ports = PortAllocator(30000, 30000 + 4 * calls + 20)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        drain_port = probe.getsockname()[1]
    sessions: list[RtpSession] = []
    for _ in range(calls):
        session = await RtpSession.open(ports, "127.0.0.1")
        config = StreamConfig(codec, pt, 101)
        session.source = _RoomFeed(MediaStream(config, 0.0).codec.sample_rate).next_frame
        sessions.append(session)
    start_at = time.monotonic() + 0.5
    peers = multiprocessing.get_context("fork").Process(
        target=_peers_process, args=([s.local_port for s in sessions], packets, frames, drain_port, start_at)
    )
    peers.start()
    for session in sessions:
        session.start(StreamConfig(codec, pt, 101), ("127.0.0.1", drain_port))
    await asyncio.sleep(max(0.0, start_at - time.monotonic()) + 0.2)

    def counts() -> tuple[int, int]:
        streams = [s.stream for s in sessions if s.stream is not None]
        return sum(st.sent.packets for st in streams), sum(st.received.packets for st in streams)

    sent_before, received_before = counts()
    cpu_start = time.process_time()
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu_start
    sent, received = counts()
    for session in sessions:
        await session.close()
    peers.join()
    return cpu, sent - sent_before, received - received_before


def bench_sessions(codec: str, pt: int, calls: int, seconds: float) -> tuple[float, float]:
    """Microseconds per call-frame (a frame sent plus one received), and the share of due frames handled:
    below 1 the machine could not keep up and the figure is not valid."""
    cpu, sent, received = asyncio.run(_run_sessions(codec, pt, calls, seconds))
    frames = (sent + received) / 2
    return cpu / frames * 1e6, min(sent, received) / (calls * seconds * 50)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-sessions", action="store_true")
    args = parser.parse_args()
    print("CPU microseconds per call per 20 ms frame, both directions (best of --repeat runs)")
    print(f"{'codec':6} {'pipeline':>9} {'+48k out':>9} {'ticks':>9} {'sessions':>9} {'kept up':>8}")
    for codec, pt in CODECS:
        pipeline = min(bench_pipeline(codec, pt, args.frames, to_48k=False) for _ in range(args.repeat))
        resampled = min(bench_pipeline(codec, pt, args.frames, to_48k=True) for _ in range(args.repeat))
        ticks = min(bench_ticks(codec, pt, args.calls) for _ in range(args.repeat))
        sessions = ""
        if not args.skip_sessions:
            cost, kept_up = min(bench_sessions(codec, pt, args.calls, args.seconds) for _ in range(args.repeat))
            sessions = f"{cost:9.1f} {kept_up:7.0%}"
        print(f"{codec:6} {pipeline:9.1f} {resampled:9.1f} {ticks:9.1f} {sessions}")


if __name__ == "__main__":
    main()
