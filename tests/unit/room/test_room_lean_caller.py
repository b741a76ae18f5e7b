"""The caller's audio on the lean transport: paced queue, nothing sent while nothing comes, our RTP packets."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from harness.audio import dominant_frequency, sine

from sipbridge.media.codecs import OpusCodec
from sipbridge.room.lean.caller import FRAME_TICKS, QUEUE_FRAMES, CallerAudio, audio_level
from sipbridge.room.lean.negotiated import AUDIO_LEVEL_EXTENSION, MID_EXTENSION, SendRoute

ROUTE = SendRoute(mid="0", ssrc=0x1234, payload_type=111, mid_extension=3, audio_level_extension=5)
RATE = 8000


def _parse(packet: bytes) -> RtpPacket:
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=3, uri=MID_EXTENSION),
                RTCRtpHeaderExtensionParameters(id=5, uri=AUDIO_LEVEL_EXTENSION),
            ]
        )
    )
    return RtpPacket.parse(packet, extensions)


def _frames(seconds: float) -> list[np.ndarray]:
    tone = sine(440.0, seconds, RATE, dbfs=-20.0)
    return [tone[i : i + 160] for i in range(0, len(tone) - 159, 160)]


def test_the_level_of_a_frame_in_minus_dbov() -> None:
    assert audio_level(sine(440.0, 0.02, RATE, dbfs=-20.0)) == 23  # a sine's RMS is 3 dB under its peak
    assert audio_level(np.zeros(160, dtype=np.int16)) == 127


async def test_nothing_is_sent_while_nothing_is_pushed_and_time_still_passes() -> None:
    caller = CallerAudio(RATE, random.Random(1))
    caller.set_route(ROUTE)
    assert [caller.next_packet() for _ in range(50)] == [None] * 50
    (frame,) = _frames(0.02)
    await caller.put(frame)
    first = _parse(caller.next_packet() or b"")
    await caller.put(frame)
    second = _parse(caller.next_packet() or b"")
    assert caller.next_packet() is None
    await caller.put(frame)
    third = _parse(caller.next_packet() or b"")
    assert (first.marker, second.marker, third.marker) == (1, 0, 1)  # each talkspurt starts with the marker
    assert second.timestamp - first.timestamp == FRAME_TICKS
    assert third.timestamp - second.timestamp == 2 * FRAME_TICKS
    assert (second.sequence_number - first.sequence_number, third.sequence_number - second.sequence_number) == (1, 1)
    assert caller.packets == 3


async def test_packets_carry_our_ssrc_and_extensions_and_decode_to_the_callers_audio() -> None:
    caller = CallerAudio(RATE)
    caller.set_route(ROUTE)
    decoder = OpusCodec(RATE)
    decoded = []
    for frame in _frames(1.0):
        await caller.put(frame)
        packet = _parse(caller.next_packet() or b"")
        assert (packet.ssrc, packet.payload_type) == (0x1234, 111)
        assert packet.extensions.mid == "0"
        assert packet.extensions.audio_level == (False, 23)
        decoded.append(decoder.decode(packet.payload))
    assert dominant_frequency(np.concatenate(decoded)[RATE // 2 :], RATE) == pytest.approx(440.0, abs=5.0)


async def test_no_packet_before_the_route_is_known() -> None:
    caller = CallerAudio(RATE)
    await caller.put(_frames(0.02)[0])
    assert caller.next_packet() is None


async def test_a_producer_faster_than_real_time_waits_and_closing_releases_it() -> None:
    caller = CallerAudio(RATE)
    caller.set_route(ROUTE)
    frames = _frames(0.02 * (QUEUE_FRAMES + 1))
    for frame in frames[:QUEUE_FRAMES]:
        await caller.put(frame)
    waiting = asyncio.create_task(caller.put(frames[-1]))
    await asyncio.sleep(0)
    assert not waiting.done()
    assert caller.next_packet() is not None  # a tick makes room
    await waiting
    caller.close()
    assert caller.next_packet() is None
    await caller.put(frames[0])  # dropped once closed, never waits
    assert caller.next_packet() is None


async def test_slots_the_cadence_gave_up_drop_their_frames_and_restart_the_talkspurt() -> None:
    caller = CallerAudio(RATE)
    caller.set_route(ROUTE)
    for frame in _frames(0.06):
        await caller.put(frame)
    before = _parse(caller.next_packet() or b"")
    caller.skip(1)
    after = _parse(caller.next_packet() or b"")
    assert after.timestamp - before.timestamp == 2 * FRAME_TICKS and after.marker == 1
    assert caller.next_packet() is None


def test_rates_libopus_does_not_take_are_refused() -> None:
    with pytest.raises(ValueError):
        CallerAudio(44100)
