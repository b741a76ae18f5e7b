"""A phone call goes on while the bridge's connection to livekit-server is lost and comes back.

The bridge reaches livekit-server through a TCP proxy, so the test can cut and hold its signalling. livekit-server
is killed mid-call and started again: its room is gone, the bridge joins it again as the same participant, and
the call never ends. What the people on the call notice is checked: the agent hears the caller again, the caller
hears the agent again, the room sees the call `active` again, and the phone got no BYE until the room ended the
call at the end of the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from harness import docs_examples as docs
from harness.bridge import BridgeProcess, api_client
from harness.lk import LkRunner
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.rooms import wait_for_call_status, wait_for_room
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import SippPhone
from harness.tcp_proxy import TcpProxy
from livekit import api

pytestmark = pytest.mark.integration

CALLER = "+13105550100"
IDENTITY = f"sip_{CALLER}"
CALLER_TONE = 440.0
AGENT_TONE = 1000.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveKitServer]:
    """A livekit-server of the test's own, to kill and start again."""
    with LiveKitServer(tmp_path / "livekit") as server:
        yield server


@pytest.fixture
async def proxy(server: LiveKitServer) -> AsyncIterator[TcpProxy]:
    async with TcpProxy(server.host, server.port) as proxy:
        yield proxy


@pytest.fixture
def bridge(tmp_path: Path, server: LiveKitServer, proxy: TcpProxy) -> Iterator[BridgeProcess]:
    with BridgeProcess(tmp_path / "bridge", livekit=server, extra={"ws_url": proxy.ws_url}) as bridge:
        yield bridge


async def test_a_call_goes_on_through_a_livekit_server_restart(
    lk: LkRunner, server: LiveKitServer, proxy: TcpProxy, bridge: BridgeProcess, rtp_phone: RtpPhone, tmp_path: Path
) -> None:
    lk("sip", "inbound", "create", "t.json", target=bridge, input_files={"t.json": docs.INBOUND_TRUNK_ALLOWED_NUMBERS})
    lk("sip", "dispatch", "create", "r.json", target=bridge, input_files={"r.json": docs.DISPATCH_INDIVIDUAL_AGENT})
    async with api_client(server) as client:
        phone = SippPhone(tmp_path / "sipp", bridge.sip_port, rtp_phone.port)
        rtp_phone.play_tone(CALLER_TONE)
        call = asyncio.create_task(phone.call(limit=240))  # answered, then it waits for the bridge's BYE
        try:
            room = await wait_for_room(client, "call-")
            async with TestParticipant(server.ws_url, server.api_key, server.api_secret, room, "agent") as agent:
                await agent.publish_tone(AGENT_TONE)
                await agent.wait_tone(IDENTITY, CALLER_TONE)
                await rtp_phone.wait_tone(AGENT_TONE)
                await wait_for_call_status(client, room, IDENTITY, "active")

                proxy.hold()  # the bridge's next connection waits until the server is back
                await asyncio.to_thread(server.kill)
                await proxy.wait_connections(2)  # the bridge is trying to take the call's session up again
                heard_by_agent, heard_by_phone = agent.mark(IDENTITY), rtp_phone.mark()
                await asyncio.to_thread(server.start)
                proxy.release()

                # the agent's SDK joins the new server by itself; the bridge joins as the same participant
                await agent.wait_tone(IDENTITY, CALLER_TONE, since=heard_by_agent, within=60)
                await rtp_phone.wait_tone(AGENT_TONE, since=heard_by_phone, within=60)
                await wait_for_call_status(client, room, IDENTITY, "active")
                assert not call.done(), "the phone's call ended during the restart"

                await client.room.remove_participant(api.RoomParticipantIdentity(room=room, identity=IDENTITY))
                result = await call
            result.check()  # the one BYE came when the room ended the call
        finally:
            call.cancel()
