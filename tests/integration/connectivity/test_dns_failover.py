"""RFC 3263 against a real DNS server (dnsmasq): an outbound trunk named by a domain is reached through its NAPTR
and SRV records, highest priority first, and the call moves to the next target when the first stays silent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from harness.bridge import BridgeProcess, api_client
from harness.dns_server import DnsServer
from harness.ports import LOOPBACK, free_udp_port
from harness.processes import LiveKitServer
from harness.rtp_phone import RtpPhone
from harness.sipp_callee import SippCallee
from livekit import api

pytestmark = pytest.mark.integration

CALLEE = "+12135550100"


class SilentTarget(asyncio.DatagramProtocol):
    """A SIP server that is down in the worst way: it takes every datagram and answers none."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.received.append(data)


async def test_outbound_call_goes_to_the_best_srv_target_then_fails_over(
    tmp_path: Path, livekit_server: LiveKitServer, livekit_api: api.LiveKitAPI, rtp_phone: RtpPhone
) -> None:
    dead_port = free_udp_port()
    silent = SilentTarget()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: silent, local_addr=(LOOPBACK, dead_port)
    )
    callee = SippCallee(tmp_path / "callee", rtp_phone.port)
    records = [
        'naptr-record=carrier.test,10,10,"s","SIP+D2U","",_sip._udp.carrier.test',
        f"srv-host=_sip._udp.carrier.test,primary.carrier.test,{dead_port},10,100",
        f"srv-host=_sip._udp.carrier.test,backup.carrier.test,{callee.port},20,100",
        f"host-record=primary.carrier.test,{LOOPBACK}",
        f"host-record=backup.carrier.test,{LOOPBACK}",
    ]
    try:
        with DnsServer(tmp_path / "dns", records) as dns:
            extra = {"dns": {"nameservers": [dns.nameserver], "failover_timeout": 2}}
            with BridgeProcess(tmp_path / "bridge", livekit=livekit_server, extra=extra) as bridge:
                async with api_client(bridge) as client:
                    trunk = await client.sip.create_outbound_trunk(
                        api.CreateSIPOutboundTrunkRequest(
                            trunk=api.SIPOutboundTrunkInfo(name="srv", address="carrier.test", numbers=["+15105550100"])
                        )
                    )
                    answering = asyncio.create_task(callee.answer(ring_ms=200))
                    await client.sip.create_sip_participant(
                        api.CreateSIPParticipantRequest(
                            sip_trunk_id=trunk.sip_trunk_id, sip_call_to=CALLEE, room_name="srv-room",
                            participant_identity="callee", wait_until_answered=True,
                        )
                    )  # fmt: skip
                    # The best target (priority 10) had the INVITE first; the call went on at the backup.
                    assert silent.received and all(b"CSeq: 1 INVITE" in m for m in silent.received)
                    await livekit_api.room.remove_participant(
                        api.RoomParticipantIdentity(room="srv-room", identity="callee")
                    )
                    result = await answering
                    result.check()
                    assert "CSeq: 2 INVITE" in result.messages
                    assert dns.queries("carrier.test") and dns.queries("_sip._udp.carrier.test")
                    assert bridge.process.grep_log(f"no response at udp:{LOOPBACK}:{dead_port}: trying")
    finally:
        transport.close()
