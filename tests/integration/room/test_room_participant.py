"""RoomParticipant against a real livekit-server, with a real SDK participant on the other side of the room.

Every test runs on both room transports (`transport`: the livekit rtc SDK and the lean one) unless it is about
one transport's own machinery. Every wait is bounded by an event (audio heard, participant seen, ending reported),
never by wall-clock asserts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from harness.audio import dominant_frequency, rms_dbfs, sine, trim_silence
from harness.bridge import api_client
from harness.participant import TestParticipant
from harness.ports import LOOPBACK, free_tcp_port
from harness.processes import LiveKitServer
from harness.room_side import (
    FAR_END,
    PHONE,
    Participants,
    RecordingSink,
    credentials_of,
    eventually,
    heard_frames,
    participants_in,
    play,
)
from livekit import api, rtc
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration
from livekit.rtc._ffi_client import FfiClient

from sipbridge.room import (
    EndReason,
    LiveKitCredentials,
    ParticipantSpec,
    RoomConnectError,
    RpcError,
    RpcInvocation,
    TrackKey,
    processor_for_call,
)
from sipbridge.room.ffi_router import OWN_ASYNC_IDS_FROM, FfiRouter

pytestmark = pytest.mark.integration


async def test_joins_as_sip_participant_with_attributes_metadata_and_agent_dispatch(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str, lkapi: api.LiveKitAPI
) -> None:
    spec = ParticipantSpec(
        room=tmp_room,
        identity=PHONE,
        name="Phone +15105550100",
        metadata='{"caller": "+15105550100"}',
        attributes={"sip.callStatus": "ringing", "sip.phoneNumber": "+15105550100"},
        room_config=RoomConfiguration(agents=[RoomAgentDispatch(agent_name="inbound-agent", metadata="m")]),
    )
    async with participant(credentials_of(livekit_server), spec, RecordingSink()):

        async def microphone_published() -> bool:
            (info,) = await participants_in(lkapi, tmp_room)
            return [track.source for track in info.tracks] == [api.TrackSource.MICROPHONE]

        await eventually(microphone_published, "the phone's microphone track")
        (info,) = await participants_in(lkapi, tmp_room)
        assert info.identity == PHONE and info.name == "Phone +15105550100"
        assert info.kind == api.ParticipantInfo.Kind.SIP
        assert info.metadata == '{"caller": "+15105550100"}'
        assert dict(info.attributes) == {"sip.callStatus": "ringing", "sip.phoneNumber": "+15105550100"}
        dispatches = await lkapi.agent_dispatch.list_dispatch(room_name=tmp_room)
        assert [(d.agent_name, d.metadata) for d in dispatches] == [("inbound-agent", "m")]


async def test_caller_tone_is_heard_in_the_room(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str, far_end: TestParticipant
) -> None:
    rate = 16000  # a wideband phone codec's rate; the SDK resamples towards Opus
    spec = ParticipantSpec(room=tmp_room, identity=PHONE)
    async with participant(credentials_of(livekit_server), spec, RecordingSink(), publish_rate=rate) as phone:
        await far_end.wait_participant(PHONE)
        player = asyncio.create_task(play(phone, sine(440.0, 30.0, rate, dbfs=-20.0), rate))
        try:
            heard = await far_end.wait_heard(PHONE, 2.5)
            await far_end.wait_speaking(PHONE)  # the server reads our audio level
        finally:
            player.cancel()
    sounding = trim_silence(heard, 48000)[-48000:]
    assert len(sounding) == 48000
    assert dominant_frequency(sounding, 48000) == pytest.approx(440.0, abs=5.0)
    assert rms_dbfs(sounding) == pytest.approx(-20.0, abs=3.0)


async def test_room_tone_reaches_the_sink_at_the_mixers_rate_and_frame_size(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str, far_end: TestParticipant
) -> None:
    rate = 8000  # G.711's rate: the mixer asks for it and no resampling happens on our side
    sink = RecordingSink()
    spec = ParticipantSpec(room=tmp_room, identity=PHONE)
    async with participant(credentials_of(livekit_server), spec, sink, subscribe_rate=rate) as phone:
        await far_end.publish_tone(1000.0, dbfs=-20.0)
        async with asyncio.timeout(20):
            await phone.wait_remote_audio()
        await sink.wait_for(lambda: len(sink.heard_from(FAR_END)) >= 150)
        frames = sink.heard_from(FAR_END)
        assert {len(frame) for frame in frames} == {rate // 50}
        sounding = trim_silence(np.concatenate(frames), rate)[-rate:]
        assert len(sounding) == rate
        assert dominant_frequency(sounding, rate) == pytest.approx(1000.0, abs=5.0)
        assert rms_dbfs(sounding) == pytest.approx(-20.0, abs=3.0)

        (key,) = sink.inputs
        assert key.participant_identity == FAR_END
        await far_end.disconnect()  # its track goes, and the input with it
        await sink.wait_for(lambda: sink.removed == [key])


async def test_an_agent_already_speaking_when_the_call_joins_is_heard(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str, far_end: TestParticipant
) -> None:
    """The server asks for the agent's m-section while our first offer is still being answered or connected."""
    rate = 16000
    await far_end.publish_tone(700.0)
    sink = RecordingSink()
    spec = ParticipantSpec(room=tmp_room, identity=PHONE)
    async with participant(credentials_of(livekit_server), spec, sink, subscribe_rate=rate) as phone:
        async with asyncio.timeout(20):
            await phone.wait_remote_audio()
        await sink.wait_for(lambda: heard_frames(sink, 100))
    heard = trim_silence(np.concatenate(sink.heard_from(FAR_END)), rate)[-rate:]
    assert dominant_frequency(heard, rate) == pytest.approx(700.0, abs=5.0)


async def test_a_track_unpublished_and_another_published_is_heard_in_its_place(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str, far_end: TestParticipant
) -> None:
    """The server frees the first track's m-section and may give it to the next one (a new SSRC, a new track)."""
    rate = 16000
    sink = RecordingSink()
    spec = ParticipantSpec(room=tmp_room, identity=PHONE)
    async with participant(credentials_of(livekit_server), spec, sink, subscribe_rate=rate):
        await far_end.publish_tone(500.0)
        await sink.wait_for(lambda: heard_frames(sink, 100))
        (first,) = sink.inputs
        await far_end.stop_tone()
        await far_end.room.local_participant.unpublish_track(first.track_sid)
        await sink.wait_for(lambda: sink.removed == [first])
        await far_end.publish_tone(1300.0)
        await sink.wait_for(lambda: len(sink.inputs) == 2 and len(sink.inputs[_newest(sink)].frames) >= 100)
        heard = trim_silence(np.concatenate(sink.inputs[_newest(sink)].frames), rate)[-rate:]
    assert dominant_frequency(heard, rate) == pytest.approx(1300.0, abs=5.0)


def _newest(sink: RecordingSink) -> TrackKey:
    return list(sink.inputs)[-1]


@pytest.mark.parametrize("transport", ["sdk"])  # the FfiRouter is the SDK transport's machinery
async def test_a_calls_audio_events_bypass_the_sdks_fan_out(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str, far_end: TestParticipant
) -> None:
    sink = RecordingSink()
    spec = ParticipantSpec(room=tmp_room, identity=PHONE)
    sdk_subscriber = FfiClient.instance.queue.subscribe()
    try:
        async with participant(credentials_of(livekit_server), spec, sink) as phone:
            await far_end.publish_tone(1000.0)
            routed_before = FfiRouter.get().routed_events
            player = asyncio.create_task(play(phone, sine(440.0, 30.0, 48000), 48000))
            try:
                await sink.wait_for(lambda: len(sink.heard_from(FAR_END)) >= 100)
            finally:
                player.cancel()
            routed = FfiRouter.get().routed_events - routed_before
        seen = []
        while not sdk_subscriber.empty():
            seen.append(sdk_subscriber.get_nowait())
    finally:
        FfiClient.instance.queue.unsubscribe(sdk_subscriber)
    # our captures' completions never reached the SDK's subscribers; frames and completions went through the router
    assert not [e for e in seen if e.capture_audio_frame.async_id >= OWN_ASYNC_IDS_FROM]
    assert routed >= 100


async def test_calls_in_one_process_each_hear_only_their_own_room(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str
) -> None:
    rate = 16000
    tones = {f"{tmp_room}-a": 600.0, f"{tmp_room}-b": 1400.0}
    sinks = {room: RecordingSink() for room in tones}
    credentials = credentials_of(livekit_server)
    key, secret = livekit_server.api_key, livekit_server.api_secret
    async with contextlib.AsyncExitStack() as stack:
        for room, freq in tones.items():
            spec = ParticipantSpec(room=room, identity=PHONE)
            await stack.enter_async_context(participant(credentials, spec, sinks[room], subscribe_rate=rate))
            agent = await stack.enter_async_context(TestParticipant(livekit_server.ws_url, key, secret, room, FAR_END))
            await agent.publish_tone(freq)
        for sink in sinks.values():
            await sink.wait_for(functools.partial(heard_frames, sink, 100))
    for room, freq in tones.items():
        heard = trim_silence(np.concatenate(sinks[room].heard_from(FAR_END)), rate)[-rate:]
        assert dominant_frequency(heard, rate) == pytest.approx(freq, abs=5.0)


async def test_dtmf_both_ways(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str, far_end: TestParticipant
) -> None:
    towards_phone: list[str] = []
    got_digit = asyncio.Event()

    def on_dtmf(digit: str) -> None:
        towards_phone.append(digit)
        got_digit.set()

    spec = ParticipantSpec(room=tmp_room, identity=PHONE)
    async with participant(credentials_of(livekit_server), spec, RecordingSink(), on_dtmf=on_dtmf) as phone:
        await far_end.wait_participant(PHONE)
        for digit in "1*#A":
            await phone.send_dtmf(digit)
        received = await far_end.wait_dtmf(4, within=10)
        assert [(d.code, d.digit, d.sender_identity) for d in received] == [
            (1, "1", PHONE),
            (10, "*", PHONE),
            (11, "#", PHONE),
            (12, "A", PHONE),
        ]
        for code, digit in [(9, "9"), (11, "#")]:
            await far_end.publish_dtmf(code, digit)
        async with asyncio.timeout(10):
            while len(towards_phone) < 2:
                got_digit.clear()
                await got_digit.wait()
        assert towards_phone == ["9", "#"]


async def test_call_status_and_attributes_are_visible(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str, lkapi: api.LiveKitAPI
) -> None:
    spec = ParticipantSpec(room=tmp_room, identity=PHONE, attributes={"sip.callStatus": "ringing", "keep": "me"})
    async with participant(credentials_of(livekit_server), spec, RecordingSink()) as phone:
        await phone.set_call_status("active")
        await phone.update_attributes({"sip.h.x-extra": "1"})

        expected = {"sip.callStatus": "active", "keep": "me", "sip.h.x-extra": "1"}

        async def updated() -> bool:
            (info,) = await participants_in(lkapi, tmp_room)
            return dict(info.attributes) == expected

        await eventually(updated, f"attributes {expected}")


async def test_removal_from_the_room_ends_the_call(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str, lkapi: api.LiveKitAPI
) -> None:
    spec = ParticipantSpec(room=tmp_room, identity=PHONE)
    async with participant(credentials_of(livekit_server), spec, RecordingSink()) as phone:
        await lkapi.room.remove_participant(api.RoomParticipantIdentity(room=tmp_room, identity=PHONE))
        async with asyncio.timeout(10):
            assert await phone.wait_ended() is EndReason.REMOVED
        await phone.push(np.zeros(960, dtype=np.int16))  # frames after the end are dropped, not an error
        await phone.leave()  # waits for the release the ending started
        assert not phone.connected
    assert phone.end_reason is EndReason.REMOVED


async def test_room_deletion_ends_the_call(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str, lkapi: api.LiveKitAPI
) -> None:
    spec = ParticipantSpec(room=tmp_room, identity=PHONE)
    async with participant(credentials_of(livekit_server), spec, RecordingSink()) as phone:
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=tmp_room))
        async with asyncio.timeout(10):
            assert await phone.wait_ended() is EndReason.ROOM_DELETED


async def test_losing_the_server_ends_the_call_as_connection_lost(
    participant: Participants, tmp_path: Path, tmp_room: str
) -> None:
    with LiveKitServer(tmp_path / "livekit") as server:
        phone = participant(credentials_of(server), ParticipantSpec(room=tmp_room, identity=PHONE), RecordingSink())
        await phone.join()
        await asyncio.to_thread(server.process.stop, 0.5, sigterms=0)  # SIGKILL: the server says no goodbye
        try:
            async with asyncio.timeout(120):  # the SDK first tries to resume and to reconnect
                assert await phone.wait_ended() is EndReason.CONNECTION_LOST
        finally:
            await phone.leave()


async def test_leave_reports_left_and_is_idempotent(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str
) -> None:
    phone = participant(credentials_of(livekit_server), ParticipantSpec(room=tmp_room, identity=PHONE), RecordingSink())
    await phone.join()
    await phone.leave()
    await phone.leave()
    assert await phone.wait_ended() is EndReason.LEFT
    assert not phone.connected


async def test_refused_token_is_a_clear_connect_error(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str
) -> None:
    wrong = LiveKitCredentials(livekit_server.ws_url, livekit_server.api_key, "not-the-secret-" + "x" * 20)
    phone = participant(wrong, ParticipantSpec(room=tmp_room, identity=PHONE), RecordingSink())
    with pytest.raises(RoomConnectError, match=tmp_room):
        await phone.join()
    assert phone.end_reason is EndReason.LEFT and not phone.connected


async def test_unreachable_server_is_a_clear_connect_error(participant: Participants, tmp_room: str) -> None:
    nowhere = LiveKitCredentials(f"ws://{LOOPBACK}:{free_tcp_port()}", "APIkey", "secret-" + "x" * 32)
    phone = participant(nowhere, ParticipantSpec(room=tmp_room, identity=PHONE), RecordingSink())
    with pytest.raises(RoomConnectError, match="Connection refused"):
        await phone.join()
    assert not phone.connected


async def test_krisp_flag_lowers_a_noisy_callers_noise_in_the_room(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str, far_end: TestParticipant
) -> None:
    rate = 16000
    rng = np.random.default_rng(3)
    noise = np.clip(rng.normal(0.0, 32767 / np.sqrt(2) * 10 ** (-30 / 20), 30 * rate), -32768, 32767)
    levels: dict[bool, float] = {}
    for krisp in (False, True):
        identity = f"{PHONE}-krisp-{krisp}"
        spec = ParticipantSpec(room=tmp_room, identity=identity)
        processor = processor_for_call(krisp, rate)
        async with participant(
            credentials_of(livekit_server), spec, RecordingSink(), publish_rate=rate, processor=processor
        ) as phone:
            await far_end.wait_participant(identity)
            player = asyncio.create_task(play(phone, noise.astype(np.int16), rate))
            try:
                heard = await far_end.wait_heard(identity, 4.0)
            finally:
                player.cancel()
        levels[krisp] = rms_dbfs(heard[-48000:])
    assert levels[False] > -36.0  # -30 dBFS sent; Opus keeps most of white noise's energy
    assert levels[True] < levels[False] - 6.0, levels  # about 10 dB measured; the unit test pins the suppressor


async def test_room_rpc_from_an_agent_is_answered(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str, far_end: TestParticipant
) -> None:
    calls: list[RpcInvocation] = []

    async def echo(invocation: RpcInvocation) -> str:
        calls.append(invocation)
        return invocation.payload[::-1]

    async def refuse(invocation: RpcInvocation) -> str:
        raise RpcError(4001, "no such thing", '{"why": "test"}')

    spec = ParticipantSpec(room=tmp_room, identity=PHONE)
    async with participant(credentials_of(livekit_server), spec, RecordingSink()) as phone:
        phone.register_rpc("lk.sip.echo", echo)
        phone.register_rpc("lk.sip.refuse", refuse)
        await far_end.wait_participant(PHONE)
        assert await far_end.perform_rpc(PHONE, "lk.sip.echo", "hello") == "olleh"
        assert [(c.caller_identity, c.method, c.payload) for c in calls] == [(FAR_END, "lk.sip.echo", "hello")]
        with pytest.raises(rtc.RpcError) as refused:
            await far_end.perform_rpc(PHONE, "lk.sip.refuse", "")
        assert (refused.value.code, refused.value.message, refused.value.data) == (
            4001,
            "no such thing",
            '{"why": "test"}',
        )
        with pytest.raises(rtc.RpcError) as unknown:
            await far_end.perform_rpc(PHONE, "lk.sip.nobody", "")
        assert (unknown.value.code, unknown.value.message) == (1400, "Method not supported at destination")


async def test_the_same_identity_joining_again_replaces_the_call(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str
) -> None:
    spec = ParticipantSpec(room=tmp_room, identity=PHONE)
    credentials = credentials_of(livekit_server)
    async with (
        participant(credentials, spec, RecordingSink()) as first,
        participant(credentials, spec, RecordingSink()) as second,
    ):
        async with asyncio.timeout(10):
            assert await first.wait_ended() is EndReason.REPLACED
        assert second.end_reason is None and not first.connected


async def test_server_shutdown_ends_the_call(participant: Participants, tmp_path: Path, tmp_room: str) -> None:
    with LiveKitServer(tmp_path / "livekit") as server:
        phone = participant(credentials_of(server), ParticipantSpec(room=tmp_room, identity=PHONE), RecordingSink())
        await phone.join()
        stopping = asyncio.create_task(asyncio.to_thread(server.stop))  # SIGTERM twice: stop now, tell everyone
        try:
            async with asyncio.timeout(90):
                ended = await phone.wait_ended()
        finally:
            await phone.leave()
            await stopping
    # livekit-server 1.13.5 races its own forced shutdown: it closes the rooms (writing each participant's leave)
    # and exits, and one run in eight or so (before reconnection existed too) the process is gone before the
    # leave is written. The call then ends CONNECTION_LOST, once reconnecting to a server that is gone failed.
    assert ended in (EndReason.SERVER_SHUTDOWN, EndReason.CONNECTION_LOST)


@dataclass(frozen=True)
class _Held:
    """What the process holds: open file descriptors by what they are (a socket's inode), threads, asyncio tasks.
    Compared by identity, not by count: other code in the process (the SDK's runtime, left from the SDK-transport
    tests) may close its own sockets meanwhile, which must neither hide a leak nor look like one."""

    fds: Counter[str]
    threads: frozenset[int]
    tasks: frozenset[asyncio.Task[Any]]

    def beyond(self, baseline: _Held) -> str:
        """What this holds that `baseline` did not ("" when nothing)."""
        fds = dict(self.fds - baseline.fds)
        threads = [t.name for t in threading.enumerate() if t.ident in self.threads - baseline.threads]
        tasks = [t.get_name() for t in self.tasks - baseline.tasks]
        found = (("fds", fds), ("threads", threads), ("tasks", tasks))
        return ", ".join(f"{what}: {items}" for what, items in found if items)


def _held() -> _Held:
    fds: Counter[str] = Counter()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, gone once listed
            fds[os.readlink(f"/proc/self/fd/{fd}")] += 1
    threads = frozenset(t.ident for t in threading.enumerate() if t.ident is not None)
    return _Held(fds, threads, frozenset(asyncio.all_tasks()))


async def _lets_go(baseline: _Held) -> None:
    """Waits (closing sockets takes a loop turn or two) until the process holds nothing it did not hold before."""
    for _ in range(100):
        if not _held().beyond(baseline):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the process still holds what it did not before the call: {_held().beyond(baseline)}")


async def _remove(server: LiveKitServer, room: str, identity: str) -> None:
    """RemoveParticipant from a client of its own, closed at once (so no idle connection of it stays open)."""
    async with api_client(server) as client:
        await client.room.remove_participant(api.RoomParticipantIdentity(room=room, identity=identity))


@pytest.mark.parametrize("transport", ["lean"])  # the SDK's FFI keeps threads and sockets for the whole process
async def test_every_ending_lets_go_of_everything(
    participant: Participants, livekit_server: LiveKitServer, tmp_room: str, tmp_path: Path
) -> None:
    credentials = credentials_of(livekit_server)
    spec = ParticipantSpec(room=tmp_room, identity=PHONE)
    async with participant(credentials, spec, RecordingSink()):
        pass  # the first join starts what the process keeps anyway (the resolver's thread pool)
    await asyncio.to_thread(os.getpid)  # and the executor's thread the test uses below
    baseline = _held()

    phone = participant(credentials, spec, RecordingSink())
    await phone.join()
    await phone.leave()
    await _lets_go(baseline)

    phone = participant(credentials, spec, RecordingSink())
    await phone.join()
    await _remove(livekit_server, tmp_room, PHONE)
    assert await phone.wait_ended() is EndReason.REMOVED
    await _lets_go(baseline)  # released by itself, before anyone calls leave()

    with LiveKitServer(tmp_path / "livekit") as server:
        phone = participant(credentials_of(server), spec, RecordingSink())
        await phone.join()
        await asyncio.to_thread(server.process.stop, 0.5, sigterms=0)
        assert await phone.wait_ended() is EndReason.CONNECTION_LOST  # after the reconnect window
    await _lets_go(baseline)

    wrong = LiveKitCredentials(livekit_server.ws_url, livekit_server.api_key, "not-the-secret-" + "x" * 20)
    with pytest.raises(RoomConnectError):
        await participant(wrong, spec, RecordingSink()).join()
    await _lets_go(baseline)
