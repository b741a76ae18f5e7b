"""CallMedia against a phone (a plain RtpSession) on loopback: prompt, then the room's mix, the caller's
audio at the room's rate, and digits."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import numpy as np
import pytest

from sipbridge.media.call_media import CallMedia
from sipbridge.media.codecs import Pcm
from sipbridge.media.ports import PortAllocator
from sipbridge.media.prompts import ENTERING_ROOM, load_prompt
from sipbridge.media.session import RtpSession
from sipbridge.media.stream import StreamConfig
from sipbridge.media.tones import dial_tone

HOST = "127.0.0.1"


def _free_range() -> tuple[int, int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    return port - port % 2, port - port % 2 + 7


def _peak_hz(frames: list[Pcm], rate: int) -> float:
    audio = np.concatenate(frames).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / rate)[np.argmax(spectrum)])


async def _until(condition: Callable[[], bool], within: float = 30.0) -> None:
    """Polls what the media cadence changes in the background (bounded, so a failure cannot hang)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (the cadence's state)
            await asyncio.sleep(0.02)


def _tone(freq: float, rate: int, frames: int) -> list[Pcm]:
    n = rate // 50
    t = np.arange(n * frames) / rate
    wave = (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)
    return [wave[i * n : (i + 1) * n] for i in range(frames)]


async def test_prompt_then_room_mix_to_the_caller_and_caller_audio_to_the_room() -> None:
    ports = PortAllocator(*_free_range())
    bridge = await CallMedia.open(ports, HOST, room_rate=48000)
    phone = await RtpSession.open(ports, HOST)
    heard_by_phone: list[Pcm] = []
    to_room: list[Pcm] = []
    digits: list[str] = []
    caller_tone = iter(_tone(1000, 16000, 100000))
    try:
        with pytest.raises(RuntimeError):
            bridge.add_participant()
        phone.sink = heard_by_phone.append
        phone.source = lambda: next(caller_tone)
        bridge.on_caller_audio = to_room.append
        bridge.session.on_digit = digits.append
        config = StreamConfig("G722", 9, 101)
        bridge.start(config, (HOST, phone.local_port))
        phone.start(config, (HOST, bridge.local_port))
        assert bridge.codec_rate == 16000

        await asyncio.wait_for(bridge.play_prompt(ENTERING_ROOM), 20)
        prompt_frames = len(load_prompt(ENTERING_ROOM, 16000)) // 320
        loud = [f for f in heard_by_phone if np.abs(f).max() > 1000]
        assert len(loud) >= prompt_frames // 2  # the phone heard the prompt

        participant = bridge.add_participant(48000)  # the room side at 48 kHz, resampled in the mixer
        heard_by_phone.clear()
        for frame in _tone(440, 48000, 60):
            participant.push(frame)
            await asyncio.sleep(0.02)
        phone.send_digits("7")
        await _until(lambda: bool(digits))
        assert digits == ["7"]
        room_audio = [f for f in heard_by_phone if np.abs(f).max() > 1000]  # not the silence after the pushes
        assert _peak_hz(room_audio[-30:], 16000) == pytest.approx(440, abs=15)
        assert all(len(f) == 960 for f in to_room) and len(to_room) > 50
        assert _peak_hz(to_room[-40:], 48000) == pytest.approx(1000, abs=15)
    finally:
        await bridge.close()
        await phone.close()
    assert ports.in_use == 0


async def test_stopping_a_looped_tone_completes_its_future() -> None:
    ports = PortAllocator(*_free_range())
    bridge = await CallMedia.open(ports, HOST)
    try:
        bridge.start(StreamConfig("PCMU", 0), (HOST, 9))
        tone = dial_tone(8000)
        played = bridge.play(tone, 8000, loop=True)
        stream = bridge.session.stream
        assert stream is not None
        await _until(lambda: stream.sent.packets > 2 * len(tone) // 160)  # played through twice
        assert not played.done()
        bridge.stop_playing()
        assert played.done()
    finally:
        await bridge.close()


async def test_reinvite_to_another_codec_keeps_the_room_participants() -> None:
    ports = PortAllocator(*_free_range())
    bridge = await CallMedia.open(ports, HOST)
    try:
        bridge.start(StreamConfig("PCMU", 0), (HOST, 9))
        assert bridge.room_rate == 8000  # by default the caller's audio leaves at the codec's rate
        participant = bridge.add_participant(8000)
        bridge.start(StreamConfig("G722", 9), (HOST, 9))
        assert bridge.codec_rate == 16000 and bridge.mixer is not None and bridge.mixer.inputs == 1
        assert bridge.room_rate == 16000
        participant.push(np.zeros(160, np.int16))  # the same object keeps working, resampled 8 -> 16 kHz
    finally:
        await bridge.close()
    assert ports.in_use == 0
