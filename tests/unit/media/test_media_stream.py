"""Two sans-IO media streams wired back to back: audio, DTMF both ways, SRTP, RTCP and the media timeout."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from sipbridge.media.dtmf import TelephoneEvent
from sipbridge.media.inband_dtmf import GoertzelDetector
from sipbridge.media.srtp import SrtpKeys, new_inline_key
from sipbridge.media.stream import MediaStream, StreamConfig


def _one(stream: MediaStream, pcm: np.ndarray) -> bytes:
    """The one datagram of a slot that carries no digit sent both ways."""
    (datagram,) = stream.datagrams_for_frame(pcm)
    return datagram


def _pair(config: StreamConfig, config_b: StreamConfig | None = None) -> tuple[MediaStream, MediaStream]:
    return MediaStream(config, 0.0, random.Random(1)), MediaStream(config_b or config, 0.0, random.Random(2))


def _tone(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * 1004 * t) * 8000).astype(np.int16)


def _run(sender: MediaStream, receiver: MediaStream, frames: list[np.ndarray], start: float = 0.0) -> list[bytes]:
    """Sends each frame, delivers it at once, pulls one frame on the far side; returns the datagrams."""
    datagrams = []
    for i, frame in enumerate(frames):
        datagram = _one(sender, frame)
        datagrams.append(datagram)
        receiver.receive_rtp(datagram, start + i * 0.02)
    return datagrams


@pytest.mark.parametrize(("codec", "pt"), [("PCMU", 0), ("PCMA", 8), ("G722", 9), ("opus", 111)])
def test_audio_crosses_from_one_stream_to_the_other(codec: str, pt: int) -> None:
    a, b = _pair(StreamConfig(codec, pt, 101))
    n = a.frame_samples
    tone = _tone(a.codec.sample_rate, 1.0)
    received = []
    for i in range(50):
        b.receive_rtp(_one(a, tone[i * n : (i + 1) * n]), i * 0.02)
        received.append(b.pull_audio())
    out = np.concatenate(received[10:]).astype(np.float64)
    assert np.sqrt(np.mean(out**2)) == pytest.approx(8000 / np.sqrt(2), rel=0.1)
    assert b.take_digits() == []
    assert b.jitter_buffer.lost == 0


def test_rtp_header_fields_follow_rfc_3550() -> None:
    a, _ = _pair(StreamConfig("PCMU", 0))
    first = _one(a, np.zeros(160, np.int16))
    second = _one(a, np.zeros(160, np.int16))
    v1, m1, seq1, ts1, ssrc1 = struct.unpack("!BBHII", first[:12])
    _, m2, seq2, ts2, ssrc2 = struct.unpack("!BBHII", second[:12])
    assert v1 == 0x80 and m1 == 0x80 and m2 == 0x00  # version 2; marker on the first packet of the talkspurt
    assert (seq2 - seq1) & 0xFFFF == 1 and (ts2 - ts1) & 0xFFFFFFFF == 160 and ssrc1 == ssrc2
    assert len(first) == 12 + 160


def test_g722_timestamps_advance_at_8khz() -> None:
    a, _ = _pair(StreamConfig("G722", 9))
    first = _one(a, np.zeros(320, np.int16))
    second = _one(a, np.zeros(320, np.int16))
    assert (struct.unpack("!I", second[4:8])[0] - struct.unpack("!I", first[4:8])[0]) & 0xFFFFFFFF == 160


def test_digits_are_sent_as_rfc_4733_events_and_received_once() -> None:
    a, b = _pair(StreamConfig("PCMU", 0, 101))
    a.send_digits("1#9", duration_ms=100)
    silence = np.zeros(160, np.int16)
    datagrams = _run(a, b, [silence] * 60)  # each digit: 7 event slots, then livekit/sip's 250 ms pause
    events = [d for d in datagrams if d[1] & 0x7F == 101]
    assert len(events) == 3 * 7  # 4 updates + 3 end packets per digit at 20 ms
    first_digit = events[:7]
    assert {struct.unpack("!I", d[4:8])[0] for d in first_digit} == {struct.unpack("!I", first_digit[0][4:8])[0]}
    assert [d[1] >> 7 for d in first_digit] == [1, 0, 0, 0, 0, 0, 0]
    assert [TelephoneEvent.parse(d[12:]).end for d in first_digit] == [False] * 4 + [True] * 3
    assert b.take_digits() == ["1", "#", "9"]
    assert not a.sending_digits


def test_without_telephone_event_digits_go_and_come_in_band() -> None:
    a, b = _pair(StreamConfig("PCMA", 8, None))
    a.send_digits("47", duration_ms=80)
    frames = [np.zeros(160, np.int16)] * 30
    found = []
    detector = GoertzelDetector(8000)
    for i, frame in enumerate(frames):
        b.receive_rtp(_one(a, frame), i * 0.02)
        found += detector.feed(b.pull_audio())
    assert found == ["4", "7"]
    assert b.take_digits() == ["4", "7"]  # the stream's own detector, on because no telephone-event


def test_audio_dtmf_sends_the_tone_in_the_audio_beside_each_event_packet() -> None:
    a = MediaStream(StreamConfig("PCMU", 0, 101, dtmf_audio=True), 0.0, random.Random(1))
    by_events = MediaStream(StreamConfig("PCMU", 0, 101), 0.0, random.Random(2))
    by_ear = GoertzelDetector(8000)
    a.send_digits("5", duration_ms=100)
    room = _tone(8000, 0.6) // 8  # the room's own audio goes on under the tone
    slots = [a.datagrams_for_frame(room[i * 160 : (i + 1) * 160]) for i in range(30)]
    assert [len(s) for s in slots[:8]] == [2] * 7 + [1]  # 7 event packets (4 updates, 3 ends), each with audio
    heard = []
    for i, slot in enumerate(slots):
        kinds = sorted(d[1] & 0x7F for d in slot)
        assert kinds in ([0], [0, 101]), kinds
        audio = next(d for d in slot if d[1] & 0x7F == 0)
        assert struct.unpack("!I", audio[4:8])[0] == struct.unpack("!I", slots[0][-1][4:8])[0] + 160 * i
        for datagram in slot:
            by_events.receive_rtp(datagram, i * 0.02)
        heard.append(by_events.pull_audio())
    assert by_events.take_digits() == ["5"]
    assert by_ear.feed(np.concatenate(heard)) == ["5"]
    counts = a.packet_counts()
    assert (counts[("send", "telephone-event")], counts[("send", "PCMU")]) == (7, 30)


def test_srtp_streams_talk_with_swapped_keys_and_reject_tampering() -> None:
    key_a, key_b = new_inline_key(), new_inline_key()
    suite = "AES_CM_128_HMAC_SHA1_80"
    a = MediaStream(StreamConfig("PCMU", 0, 101, srtp=SrtpKeys(suite, key_a, key_b)), 0.0)
    b = MediaStream(StreamConfig("PCMU", 0, 101, srtp=SrtpKeys(suite, key_b, key_a)), 0.0)
    tone = _tone(8000, 0.2)
    datagram = _one(a, tone[:160])
    assert len(datagram) == 12 + 160 + 10  # 80-bit authentication tag
    assert datagram[12:172] != a.codec.encode(tone[:160])  # the payload is encrypted
    assert b.receive_rtp(datagram, 0.0)
    tampered = bytearray(_one(a, tone[160:320]))
    tampered[20] ^= 1
    assert not b.receive_rtp(bytes(tampered), 0.02)
    plain = MediaStream(StreamConfig("PCMU", 0), 0.0)
    assert not b.receive_rtp(_one(plain, tone[:160]), 0.04)  # unencrypted is refused
    assert b.rejected == 2
    report = a.rtcp_report(1.0, 1_700_000_000.0)
    assert b.receive_rtcp(report, 1.0)


def test_rtcp_reports_what_was_lost() -> None:
    a, b = _pair(StreamConfig("PCMU", 0))
    silence = np.zeros(160, np.int16)
    for i in range(100):
        datagram = _one(a, silence)
        if i % 10 != 5:
            b.receive_rtp(datagram, i * 0.02)
    sender_report = a.rtcp_report(2.0, 1_700_000_000.0)
    assert sender_report[1] == 200  # SR: a sent audio since the last report
    assert b.receive_rtcp(sender_report, 2.0)
    receiver_report = b.rtcp_report(2.5, 1_700_000_000.5)
    assert receiver_report[1] == 201  # RR: b has sent nothing
    lost = int.from_bytes(receiver_report[8 + 5 : 8 + 8], "big")
    fraction = receiver_report[8 + 4]
    assert lost == 10 and fraction == 10 * 256 // 100
    dlsr = int.from_bytes(receiver_report[8 + 20 : 8 + 24], "big")
    assert dlsr == 0.5 * 65536


def test_media_timeout_before_and_after_rtp_flowed() -> None:
    a, b = _pair(StreamConfig("PCMU", 0, media_timeout=15.0, media_timeout_initial=30.0))
    assert not b.timed_out(29.0) and b.timed_out(30.5)
    b.receive_rtp(_one(a, np.zeros(160, np.int16)), 40.0)
    assert not b.timed_out(54.0) and b.timed_out(55.5)


def test_garbage_and_foreign_payload_types_are_rejected() -> None:
    _, b = _pair(StreamConfig("PCMU", 0, 101))
    assert not b.receive_rtp(b"\x00\x01", 0.0)
    other = MediaStream(StreamConfig("PCMA", 8), 0.0)
    assert not b.receive_rtp(_one(other, np.zeros(160, np.int16)), 0.0)
    assert b.last_rtp_at is None
    cn = bytes([0x80, 13, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 40])
    assert b.receive_rtp(cn, 1.0) and b.last_rtp_at == 1.0  # comfort noise keeps the call alive


@pytest.mark.parametrize(
    ("codec", "pt", "asked", "used"),
    [("PCMU", 0, 30, 30), ("G722", 9, 30, 20), ("G722", 9, 40, 40), ("opus", 111, 40, 20)],
)
def test_ptime_is_honoured_where_the_codec_can_make_such_packets(codec: str, pt: int, asked: int, used: int) -> None:
    stream = MediaStream(StreamConfig(codec, pt, ptime_ms=asked), 0.0)
    assert stream.ptime_ms == used
    assert stream.frame_samples == stream.codec.sample_rate * used // 1000
    _one(stream, np.zeros(stream.frame_samples, np.int16))


def test_peer_packets_of_30ms_are_played_in_20ms_frames() -> None:
    peer = MediaStream(StreamConfig("PCMU", 0, ptime_ms=30), 0.0)
    ours = MediaStream(StreamConfig("PCMU", 0, ptime_ms=20), 0.0)
    tone = _tone(8000, 0.6)
    out = []
    for i in range(20):
        ours.receive_rtp(_one(peer, tone[i * 240 : (i + 1) * 240]), i * 0.03)
        out.append(ours.pull_audio())
        if i % 2:
            out.append(ours.pull_audio())  # two 20 ms pulls per 30 ms packet on average (3 per 2 packets)
    assert all(len(f) == 160 for f in out)


def test_on_hold_the_peer_is_not_expected_to_send() -> None:
    held = MediaStream(StreamConfig("PCMU", 0, direction="inactive", media_timeout_initial=30.0), 0.0)
    assert not held.config.sends and not held.timed_out(3600.0)
    listening = MediaStream(StreamConfig("PCMU", 0, direction="recvonly", media_timeout_initial=30.0), 0.0)
    assert not listening.config.sends and listening.timed_out(31.0)
    assert StreamConfig("PCMU", 0, direction="sendonly").sends


def test_a_foreign_ssrc_cannot_interrupt_the_callers_audio() -> None:
    """Packets of another SSRC interleaved with the caller's are dropped (they used to restart the jitter buffer
    and silence the caller); once the caller's SSRC has gone quiet, a new one is the peer restarting its stream."""
    caller, receiver = _pair(StreamConfig("PCMU", 0, 101))
    intruder = MediaStream(StreamConfig("PCMU", 0, 101), 0.0, random.Random(3))
    tone = _tone(8000, 2.0)
    heard = []
    for i in range(100):
        frame = tone[i * 160 : (i + 1) * 160]
        assert receiver.receive_rtp(_one(caller, frame), i * 0.02)
        assert not receiver.receive_rtp(_one(intruder, np.zeros(160, np.int16)), i * 0.02 + 0.01)
        heard.append(receiver.pull_audio())
    out = np.concatenate(heard[10:]).astype(np.float64)
    assert np.sqrt(np.mean(out**2)) == pytest.approx(8000 / np.sqrt(2), rel=0.1)
    assert receiver.jitter_buffer.resets == 0
    # the caller stops; a restarted stream (new SSRC) is played after the quiet spell
    assert receiver.receive_rtp(_one(intruder, np.zeros(160, np.int16)), 2.0 + 0.25)
