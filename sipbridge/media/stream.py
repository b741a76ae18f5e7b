"""One call's RTP stream, sans I/O: datagrams and time in, datagrams and PCM out.

The asyncio session (sipbridge.media.session) owns the sockets and the clock and calls this once per packet
and once per frame; everything here is testable with plain bytes and a fake clock.

Receive: SRTP unprotect, RTP parse, telephone-events to digits, audio through the jitter buffer and decoder
(with loss concealment) to fixed-size frames, optional in-band DTMF detection, RTCP reception statistics, and
the media timeout. Send: one frame of PCM becomes one packet (or, while a digit is being sent, that slot's
telephone-event packet, beside the audio with the digit's tone mixed in when ``dtmf_audio``), with our SSRC,
sequence numbers and timestamps, SRTP protected.
"""

from __future__ import annotations

import random
import struct
from collections import deque
from dataclasses import dataclass

import numpy as np
from aiortc.rtp import RtpPacket

from sipbridge.media.codecs import Pcm, create_codec
from sipbridge.media.dtmf import OutgoingEventPacket, TelephoneEventReceiver, telephone_event_packets
from sipbridge.media.inband_dtmf import GoertzelDetector, dtmf_tone
from sipbridge.media.jitter import JitterBuffer
from sipbridge.media.playout import Playout
from sipbridge.media.rtcp import ReceptionStats, SendStats, build_report, read_report
from sipbridge.media.srtp import SrtpContext, SrtpError, SrtpKeys

_RTP_HEADER = struct.Struct("!BBHII")
SSRC_SWITCH_SILENCE = 0.2
"""Seconds the current audio SSRC must have been silent before packets of another SSRC are played."""
DIGIT_MS = 250
"""How long a sent key press lasts, and the pause after it: livekit/sip's (its media-sdk's ``eventDur``)."""


@dataclass(frozen=True)
class _EventAndTone:
    """A slot of a digit sent both ways (``dtmf_audio``): its event packet, and the tone's frame to mix into the
    slot's audio (None once the tone is over: the event's end packets go on a little longer)."""

    event: OutgoingEventPacket
    tone: Pcm | None


@dataclass(frozen=True)
class StreamConfig:
    """What offer/answer settled for this call's audio."""

    codec: str
    payload_type: int
    dtmf_payload_type: int | None = None
    """None when the peer did not offer telephone-event: digits then go and come as in-band tones."""
    dtmf_clock_rate: int | None = None
    """The telephone-event clock (8000, or 48000 beside Opus); None: the audio codec's."""
    ptime_ms: int = 20
    srtp: SrtpKeys | None = None
    media_timeout: float = 15.0
    """Seconds without RTP, once it has flowed, before the call is reported dead."""
    media_timeout_initial: float = 30.0
    """Seconds to wait for the first RTP packet."""
    dtmf_audio: bool = False
    """``audio_dtmf``: a digit sent as telephone-events goes as its tone in the audio too (mixed in)."""
    cname: str = "sipbridge"
    direction: str = "sendrecv"
    """Ours, from offer/answer: "sendrecv", "sendonly", "recvonly" or "inactive" (hold)."""

    @property
    def sends(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")

    @property
    def expects_media(self) -> bool:
        """Whether the peer is meant to send to us, so that silence from it means the call is dead."""
        return self.direction in ("sendrecv", "recvonly")


class MediaStream:
    def __init__(self, config: StreamConfig, now: float, rng: random.Random | None = None) -> None:
        rng = rng or random.SystemRandom()
        self.config = config
        self.codec = create_codec(config.codec)
        # ptime is the peer's wish for what it receives (RFC 4566); a codec that cannot make such packets
        # sends 20 ms ones, which every peer takes. Received packets may have any duration.
        self.ptime_ms = config.ptime_ms if self.codec.supports_ptime(config.ptime_ms) else 20
        self.frame_samples = self.codec.sample_rate * self.ptime_ms // 1000
        self._frame_ticks = self.codec.clock_rate * self.ptime_ms // 1000
        self._srtp = SrtpContext(config.srtp) if config.srtp else None
        self.ssrc = rng.getrandbits(32)
        self._sequence = rng.getrandbits(16)
        self._timestamp = rng.getrandbits(32)
        self._jitter = JitterBuffer(self._frame_ticks)
        self._playout = Playout(self._jitter, self.codec.decode, self.frame_samples)
        self._events = TelephoneEventReceiver()
        self._detector = GoertzelDetector(self.codec.sample_rate) if config.dtmf_payload_type is None else None
        self._digits: list[str] = []
        self._outgoing: deque[OutgoingEventPacket | _EventAndTone | Pcm | None] = deque()
        self._talkspurt_start = True
        self._event_timestamp = 0
        self.received = ReceptionStats()
        self.sent = SendStats()
        self.started_at = now
        self.last_rtp_at: float | None = None
        self.rejected = 0
        """Datagrams dropped: malformed, failing SRTP, from another payload type or a foreign SSRC."""
        self._received_by_kind = {"audio": 0, "event": 0, "comfort noise": 0}
        self._events_sent = 0
        self._audio_ssrc: int | None = None
        self._audio_heard = now

    # -- receiving -------------------------------------------------------------------------------------------

    def receive_rtp(self, data: bytes, now: float) -> bool:
        """Takes one RTP datagram; True when it was a valid packet of this call (the session latches on it)."""
        try:
            plain = self._srtp.unprotect(data) if self._srtp else data
            packet = RtpPacket.parse(plain)
        except (SrtpError, ValueError):
            self.rejected += 1
            return False
        pt = packet.payload_type
        if pt == self.config.payload_type:
            if not self._audio_ssrc_admits(packet.ssrc, now):
                self.rejected += 1
                return False
            self._received_by_kind["audio"] += 1
            self._jitter.push(
                packet.ssrc,
                packet.sequence_number,
                packet.timestamp,
                packet.payload,
                now,
                self.codec.clock_rate,
                packet.marker == 1,
            )
        elif pt == self.config.dtmf_payload_type:
            try:
                digit = self._events.receive(packet.timestamp, packet.payload)
            except ValueError:
                self.rejected += 1
                return False
            self._received_by_kind["event"] += 1
            if digit is not None:
                self._digits.append(digit)
        elif pt == 13:  # comfort noise (RFC 3389) shows the peer is alive
            self._received_by_kind["comfort noise"] += 1
        else:  # not ours
            self.rejected += 1
            return False
        self.received.on_packet(packet.ssrc, packet.sequence_number, packet.timestamp, now, self.codec.clock_rate)
        self.last_rtp_at = now
        return True

    def _audio_ssrc_admits(self, ssrc: int, now: float) -> bool:
        """Audio is taken from one SSRC; another one takes over only once that one has gone quiet for
        ``SSRC_SWITCH_SILENCE`` (a peer restarting its stream), so injected packets cannot restart the jitter
        buffer and silence the caller."""
        if self._audio_ssrc is not None and ssrc != self._audio_ssrc and now - self._audio_heard < SSRC_SWITCH_SILENCE:
            return False
        self._audio_ssrc, self._audio_heard = ssrc, now
        return True

    def receive_rtcp(self, data: bytes, now: float) -> bool:
        try:
            plain = self._srtp.unprotect_rtcp(data) if self._srtp else data
            read_report(plain, self.received, now, self.sent, self.ssrc)
        except (SrtpError, ValueError):
            self.rejected += 1
            return False
        return True

    def pull_audio(self) -> Pcm:
        """The next ``frame_samples`` of the caller's audio: decoded, concealed where lost, silent when none."""
        frame = self._playout.next_frame()
        if self._detector is not None:
            self._digits += self._detector.feed(frame)
        return frame

    def take_digits(self) -> list[str]:
        """Digits the caller pressed since the last call, each once."""
        digits, self._digits = self._digits, []
        return digits

    def timed_out(self, now: float) -> bool:
        if not self.config.expects_media:
            return False
        if self.last_rtp_at is None:
            return now - self.started_at > self.config.media_timeout_initial
        return now - self.last_rtp_at > self.config.media_timeout

    @property
    def jitter_buffer(self) -> JitterBuffer:
        return self._jitter

    @property
    def concealed_frames(self) -> int:
        """Frames (of ``ptime_ms``) made up in place of lost packets so far."""
        return self._playout.concealed_frames

    # -- sending ---------------------------------------------------------------------------------------------

    def send_digits(self, digits: str, duration_ms: int = DIGIT_MS) -> None:
        """Queues key presses: RFC 4733 events when negotiated (with their tones in the audio as well when
        ``dtmf_audio``, as the Go service's ``audio_dtmf`` does), else in-band tones."""
        for digit in digits:
            if self.config.dtmf_payload_type is not None:
                rate = self.config.dtmf_clock_rate or self.codec.clock_rate
                plan = telephone_event_packets(digit, duration_ms, rate, self.ptime_ms)
                if self.config.dtmf_audio:
                    tone = self._tone_frames(digit, duration_ms)
                    self._outgoing.extend(
                        _EventAndTone(event, tone[i] if i < len(tone) else None) for i, event in enumerate(plan)
                    )
                else:
                    self._outgoing.extend(plan)
            else:
                self._outgoing.extend(self._tone_frames(digit, duration_ms))
            self._outgoing.extend([None] * -(-DIGIT_MS // self.ptime_ms))

    def _tone_frames(self, digit: str, duration_ms: int) -> list[Pcm]:
        tone = dtmf_tone(digit, self.codec.sample_rate, duration_ms)
        padded = np.zeros(-(-len(tone) // self.frame_samples) * self.frame_samples, dtype=np.int16)
        padded[: len(tone)] = tone
        return list(padded.reshape(-1, self.frame_samples))

    @property
    def sending_digits(self) -> bool:
        return bool(self._outgoing)

    def datagrams_for_frame(self, pcm: Pcm) -> list[bytes]:
        """The datagrams for this frame slot: the audio, or the digit being sent in its place (an event packet,
        or its tone), or with ``dtmf_audio`` both the event packet and the audio with the tone mixed in."""
        queued = self._outgoing.popleft() if self._outgoing else None
        if isinstance(queued, _EventAndTone):
            audio = pcm if queued.tone is None else _mixed(pcm, queued.tone)
            datagrams = [self._event_packet(queued.event), self._audio_packet(audio)]
        elif isinstance(queued, OutgoingEventPacket):
            datagrams = [self._event_packet(queued)]
            self._talkspurt_start = True  # audio after an event starts a new talkspurt
        else:
            datagrams = [self._audio_packet(pcm if queued is None else queued)]
        self._timestamp = (self._timestamp + self._frame_ticks) & 0xFFFFFFFF
        return datagrams

    def _event_packet(self, event: OutgoingEventPacket) -> bytes:
        if event.slot == 0:
            self._event_timestamp = self._timestamp
        event_pt = self.config.dtmf_payload_type or 0
        self._events_sent += 1
        return self._packet(event_pt, event.marker, self._event_timestamp, event.payload)

    def _audio_packet(self, pcm: Pcm) -> bytes:
        payload = self.codec.encode(pcm)
        datagram = self._packet(self.config.payload_type, self._talkspurt_start, self._timestamp, payload)
        self._talkspurt_start = False
        return datagram

    def skip_frames(self, frames: int) -> None:
        """Slots given up by the cadence: the timestamp moves on as if those packets were lost."""
        self._timestamp = (self._timestamp + frames * self._frame_ticks) & 0xFFFFFFFF

    def _packet(self, payload_type: int, marker: bool, timestamp: int, payload: bytes) -> bytes:
        second_byte = (0x80 if marker else 0) | payload_type
        header = _RTP_HEADER.pack(0x80, second_byte, self._sequence, timestamp, self.ssrc)
        self._sequence = (self._sequence + 1) & 0xFFFF
        self.sent.on_packet(len(payload), timestamp)
        datagram = header + payload
        return self._srtp.protect(datagram) if self._srtp else datagram

    def packet_counts(self) -> dict[tuple[str, str], int]:
        """RTP packets so far by (``recv``/``send``, payload name), as the Go service labels its packet counter."""
        names = {"audio": self.codec.name, "event": "telephone-event", "comfort noise": "CN"}
        counts = {("recv", names[kind]): n for kind, n in self._received_by_kind.items() if n}
        sent = {self.codec.name: self.sent.packets - self._events_sent, "telephone-event": self._events_sent}
        counts |= {("send", name): n for name, n in sent.items() if n}
        return counts

    def rtcp_report(self, now: float, unix_time: float, bye: bool = False) -> bytes:
        report = build_report(self.ssrc, self.config.cname, self.sent, self.received, now, unix_time, bye)
        return self._srtp.protect_rtcp(report) if self._srtp else report


def _mixed(pcm: Pcm, tone: Pcm) -> Pcm:
    """The slot's audio with a DTMF tone added, clipped rather than wrapped."""
    mixed: Pcm = np.clip(pcm.astype(np.int32) + tone, -32768, 32767).astype(np.int16)
    return mixed
