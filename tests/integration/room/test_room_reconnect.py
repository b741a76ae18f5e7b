"""A call's participant loses its connection to livekit-server and gets it back; the call goes on.

What is cut, as it happens in production: the signalling websocket (a TCP proxy between the participant and the
server is severed, as a broken path or a load balancer would cut it), the whole server for a while (SIGSTOP, then
SIGCONT), the server itself (killed and started again: its rooms are gone, so the participant's resume is answered
with a `leave` asking for a full reconnect, and it joins again). Each test checks what a user notices: the far
end hears the caller again, the caller hears the far end again, the call was never ended, and the room sees the
call's attributes as they were. Every wait is on an event (a connection through the proxy, audio heard), never a
sleep.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness.audio import sine
from harness.bridge import api_client
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.room_side import (
    FAR_END,
    PHONE,
    Participants,
    RecordingSink,
    eventually,
    participants_in,
    play,
)
from harness.tcp_proxy import TcpProxy
from livekit import api

from sipbridge.room import EndReason, LiveKitCredentials, ParticipantSpec, RoomParticipant, RoomTransport

pytestmark = pytest.mark.integration

RATE = 16000
CALLER_TONE = 440.0
AGENT_TONE = 1000.0


@pytest.fixture
def server(tmp_path: Path) -> LiveKitServer:
    """A livekit-server of the test's own, to freeze or kill (started by the test's `with`)."""
    return LiveKitServer(tmp_path / "livekit")


@pytest.fixture
async def proxy(server: LiveKitServer) -> AsyncIterator[TcpProxy]:
    async with TcpProxy(server.host, server.port) as proxy:
        yield proxy


async def _both_hear_each_other(phone: RoomParticipant, sink: RecordingSink, agent: TestParticipant) -> None:
    """The agent hears the caller's tone, and the caller the agent's, in what arrives from now on."""
    heard_by_agent, heard_by_phone = agent.mark(PHONE), sink.mark(FAR_END)
    await agent.wait_tone(PHONE, CALLER_TONE, since=heard_by_agent, within=45)
    await sink.wait_tone(FAR_END, AGENT_TONE, RATE, since=heard_by_phone, within=45)
    assert phone.end_reason is None and phone.connected


async def _attributes(lkapi: api.LiveKitAPI, room: str) -> dict[str, str]:
    (info,) = [p for p in await participants_in(lkapi, room) if p.identity == PHONE]
    return dict(info.attributes)


async def test_a_cut_signalling_connection_is_resumed_and_the_call_goes_on(
    participant: Participants, server: LiveKitServer, proxy: TcpProxy, tmp_room: str
) -> None:
    with server:
        credentials = LiveKitCredentials(proxy.ws_url, server.api_key, server.api_secret)
        spec = ParticipantSpec(room=tmp_room, identity=PHONE, attributes={"sip.callStatus": "active"})
        sink = RecordingSink()
        async with (
            TestParticipant(server.ws_url, server.api_key, server.api_secret, tmp_room, FAR_END) as agent,
            participant(credentials, spec, sink, publish_rate=RATE, subscribe_rate=RATE) as phone,
            api_client(server) as lkapi,
        ):
            await agent.publish_tone(AGENT_TONE)
            player = asyncio.create_task(play(phone, sine(CALLER_TONE, 600.0, RATE), RATE))
            try:
                await _both_hear_each_other(phone, sink, agent)
                sid = phone.sid

                proxy.sever()
                await proxy.wait_connections(2)  # the participant is taking the session up again
                await phone.update_attributes({"sip.h.after": "cut"})  # made now, or once it is back

                async def updated() -> bool:
                    return (await _attributes(lkapi, tmp_room)).get("sip.h.after") == "cut"

                await eventually(updated, "the attribute set after the cut", attempts=300)
                await _both_hear_each_other(phone, sink, agent)
                # resumed: the same participant all along, which the room never saw leave
                assert [p.sid for p in await participants_in(lkapi, tmp_room) if p.identity == PHONE] == [sid]
            finally:
                player.cancel()


# The SDK transport resumes here too, but one run in three or four it then never hears the agent again: after
# its resume the Rust SDK logs "synthesizing disconnect for absent participant: agent" (the agent, resuming at the
# same moment, was missing from what it saw) and drops the agent's track for good (livekit 1.2.0).
@pytest.mark.parametrize("transport", ["lean"])
async def test_a_server_frozen_for_a_while_takes_the_call_back_when_it_thaws(
    participant: Participants, server: LiveKitServer, proxy: TcpProxy, tmp_room: str
) -> None:
    with server:
        credentials = LiveKitCredentials(proxy.ws_url, server.api_key, server.api_secret)
        sink = RecordingSink()
        spec = ParticipantSpec(room=tmp_room, identity=PHONE)
        async with (
            TestParticipant(server.ws_url, server.api_key, server.api_secret, tmp_room, FAR_END) as agent,
            participant(credentials, spec, sink, publish_rate=RATE, subscribe_rate=RATE) as phone,
        ):
            await agent.publish_tone(AGENT_TONE)
            player = asyncio.create_task(play(phone, sine(CALLER_TONE, 600.0, RATE), RATE))
            try:
                await _both_hear_each_other(phone, sink, agent)
                server.process.send_signal(signal.SIGSTOP)  # sockets open, not a word any more
                try:
                    # the keep-alive finds the server silent (its ping timeout, 15 s) and a reconnect starts
                    await proxy.wait_connections(2, within=60)
                finally:
                    server.process.send_signal(signal.SIGCONT)
                await _both_hear_each_other(phone, sink, agent)
            finally:
                player.cancel()


async def test_a_restarted_server_gets_the_call_back_with_its_attributes(
    transport: RoomTransport,
    participant: Participants,
    server: LiveKitServer,
    proxy: TcpProxy,
    tmp_room: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sipbridge.room")
    with server:
        credentials = LiveKitCredentials(proxy.ws_url, server.api_key, server.api_secret)
        attributes = {"sip.callStatus": "ringing", "sip.phoneNumber": "+15105550100", "gone": "soon"}
        spec = ParticipantSpec(room=tmp_room, identity=PHONE, attributes=attributes)
        sink = RecordingSink()
        async with (
            TestParticipant(server.ws_url, server.api_key, server.api_secret, tmp_room, FAR_END) as agent,
            participant(credentials, spec, sink, publish_rate=RATE, subscribe_rate=RATE) as phone,
            api_client(server) as lkapi,
        ):
            await phone.set_call_status("active")
            await phone.update_attributes({"gone": "", "sip.h.x-extra": "1"})
            await agent.publish_tone(AGENT_TONE)
            player = asyncio.create_task(play(phone, sine(CALLER_TONE, 600.0, RATE), RATE))
            try:
                await _both_hear_each_other(phone, sink, agent)
                sid = phone.sid

                proxy.hold()  # the participant's next connection waits until the server is back
                await asyncio.to_thread(server.kill)
                await proxy.wait_connections(2)  # its first attempt to take the session up again
                await phone.update_attributes({"sip.h.during": "outage"})  # kept until it is back
                await asyncio.to_thread(server.start)
                proxy.release()  # the resume reaches a server that never knew the call: it asks for a rejoin

                await _both_hear_each_other(phone, sink, agent)
                expected = {
                    "sip.callStatus": "active",
                    "sip.phoneNumber": "+15105550100",
                    "sip.h.x-extra": "1",
                    "sip.h.during": "outage",
                }

                async def restored() -> bool:
                    return await _attributes(lkapi, tmp_room) == expected

                await eventually(restored, f"attributes {expected} after the rejoin", attempts=300)
                assert phone.sid != sid and phone.end_reason is None
            finally:
                player.cancel()
    if transport == "lean":  # the SDK logs through its FFI, not to Python's loggers
        asked = [r.getMessage() for r in caplog.records if "STATE_MISMATCH, RECONNECT" in r.getMessage()]
        assert asked, "the server's leave asking for a full reconnect was never seen"


# The SDK transport also ends CONNECTION_LOST here, but after its resume and reconnect attempts, which take
# minutes on a frozen server (measured 2.5); its ending on a lost server is test_losing_the_server_...
@pytest.mark.parametrize("transport", ["lean"])
async def test_a_server_frozen_for_good_ends_the_call_after_the_reconnect_window(
    participant: Participants, server: LiveKitServer, tmp_room: str
) -> None:
    with server:
        credentials = LiveKitCredentials(server.ws_url, server.api_key, server.api_secret)
        phone = participant(credentials, ParticipantSpec(room=tmp_room, identity=PHONE), RecordingSink())
        await phone.join()
        server.process.send_signal(signal.SIGSTOP)  # its sockets stay open; it just never answers again
        try:
            async with asyncio.timeout(120):  # the ping timeout (15 s), then RECONNECT_WINDOW (30 s) of attempts
                assert await phone.wait_ended() is EndReason.CONNECTION_LOST
        finally:
            server.process.send_signal(signal.SIGCONT)
            await phone.leave()
