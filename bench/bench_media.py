"""CPU cost of one call's media path per 20 ms frame, both directions, for G.711 and G.722 (and Opus).

Two measurements:

* ``pipeline``: a tight loop doing, per frame, exactly what a call does: receive a datagram from a real UDP
  socket, parse it into the jitter buffer, pop and decode a frame, push one room participant's frame into the
  call's mixer, mix, encode, packetise, and send it on a real UDP socket. Optionally also resample the caller's
  audio to 48 kHz for the room (not needed when the room side is asked for the codec's rate).
* ``sessions``: N concurrent calls, each a real RtpSession on loopback on the shared 20 ms asyncio cadence,
  fed by a peer socket at real time and sending to a socket nobody reads; CPU time of the process over the
  run, minus a run of the peers alone (sending into that socket), divided by calls x frames. This one
  includes asyncio's own per-packet and per-tick work.

Run: .venv/bin/python bench/bench_media.py [--calls 50] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import time

import numpy as np

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
    return [peer.datagram_for_frame(audio[i * n : (i + 1) * n]) for i in range(frames)]


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
        bridge_socket.sendto(stream.datagram_for_frame(mixer.mix_frame()), peer_address)  # mix, encode, send
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


async def _peer(port: int, packets: list[bytes], frames: int, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        start = loop.time()
        for i in range(frames):
            if stop.is_set():
                return
            await asyncio.sleep(max(0.0, start + i * 0.02 - loop.time()))
            sender.sendto(packets[i % len(packets)], ("127.0.0.1", port))


async def _run_sessions(codec: str, pt: int, calls: int, seconds: float, with_bridge: bool) -> float:
    frames = int(seconds * 50)
    packets = _peer_packets(codec, pt, 250)
    ports = PortAllocator(30000, 30000 + 4 * calls + 20)
    sessions: list[RtpSession] = []
    drain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    drain.bind(("127.0.0.1", 0))
    stop = asyncio.Event()
    peers = []
    for _ in range(calls):
        if with_bridge:
            session = await RtpSession.open(ports, "127.0.0.1")
            sessions.append(session)
            config = StreamConfig(codec, pt, 101)
            session.source = _RoomFeed(MediaStream(config, 0.0).codec.sample_rate).next_frame
            session.start(config, drain.getsockname())
            target = session.local_port
        else:  # the peers alone, sending into a socket nobody reads
            target = drain.getsockname()[1]
        peers.append(asyncio.create_task(_peer(target, packets, frames, stop)))
    cpu_start = time.process_time()
    await asyncio.gather(*peers)
    cpu = time.process_time() - cpu_start
    stop.set()
    for session in sessions:
        await session.close()
    drain.close()
    return cpu


def bench_sessions(codec: str, pt: int, calls: int, seconds: float) -> float:
    baseline = asyncio.run(_run_sessions(codec, pt, calls, seconds, with_bridge=False))
    loaded = asyncio.run(_run_sessions(codec, pt, calls, seconds, with_bridge=True))
    return (loaded - baseline) / (calls * seconds * 50) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--skip-sessions", action="store_true")
    args = parser.parse_args()
    print("CPU microseconds per call per 20 ms frame, both directions")
    print(f"{'codec':6} {'pipeline':>9} {'+48k out':>9} {'sessions':>9}")
    for codec, pt in CODECS:
        pipeline = bench_pipeline(codec, pt, args.frames, to_48k=False)
        resampled = bench_pipeline(codec, pt, args.frames, to_48k=True)
        sessions = "" if args.skip_sessions else f"{bench_sessions(codec, pt, args.calls, args.seconds):9.1f}"
        print(f"{codec:6} {pipeline:9.1f} {resampled:9.1f} {sessions:>9}")


if __name__ == "__main__":
    main()
