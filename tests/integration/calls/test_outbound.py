"""Outbound calls and transfers end to end: `lk` and livekit-api against the bridge, sipp as callee and caller."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import pytest
from harness.audio import band_db, dominant_frequency, rms_dbfs
from harness.bridge import BridgeProcess
from harness.inbound_setup import CALLER, configure, direct
from harness.lk import LkRunner
from harness.participant import RATE, TestParticipant
from harness.processes import LiveKitServer
from harness.rooms import wait_for_participant, wait_gone
from harness.rtp_phone import RATE as PHONE_RATE
from harness.rtp_phone import RtpPhone
from harness.sipapi import created_id
from harness.sipp_callee import SippCallee
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration

TRUNK_NUMBER = "+15105550100"
CALLEE = "+12135550100"
AGENT_TONE = 1000
CALLEE_TONE = 600


async def outbound_trunk(bridge_api: api.LiveKitAPI, address: str, **fields: object) -> str:
    trunk = api.SIPOutboundTrunkInfo(name="carrier", address=address, numbers=[TRUNK_NUMBER], **fields)  # type: ignore[arg-type]
    created = await bridge_api.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=trunk))
    return created.sip_trunk_id


async def attributes(livekit_api: api.LiveKitAPI, room: str, identity: str) -> dict[str, str]:
    return dict((await wait_for_participant(livekit_api, room, identity)).attributes)


async def test_lk_participant_create_with_docs_json(
    tmp_path: Path, lk: LkRunner, call_bridge: BridgeProcess, livekit_server: LiveKitServer,
    livekit_api: api.LiveKitAPI, rtp_phone: RtpPhone,
) -> None:  # fmt: skip
    """The docs' outbound trunk and participant.json through `lk`, with digest auth, DTMF and a dial tone."""
    callee = SippCallee(tmp_path / "callee", rtp_phone.port)
    rtp_phone.play_tone(CALLEE_TONE)
    trunk_json = {"trunk": {"name": "My outbound trunk", "address": callee.address, "numbers": [TRUNK_NUMBER],
                            "auth_username": "carrier-user", "auth_password": "carrier-pass"}}  # fmt: skip
    out = lk("sip", "outbound", "create", "outbound-trunk.json", target=call_bridge,
             input_files={"outbound-trunk.json": json.dumps(trunk_json)})  # fmt: skip
    trunk_id = created_id(out.stdout)
    room = "open-room"
    participant = {
        "sip_number": TRUNK_NUMBER, "sip_trunk_id": trunk_id, "sip_call_to": CALLEE, "room_name": room,
        "participant_identity": "sip-test", "participant_name": "Test call participant",
        "wait_until_answered": True, "dtmf": "*123#ww456", "play_dialtone": True,
    }  # fmt: skip
    async with TestParticipant(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, room, "agent"
    ) as agent:
        await agent.publish_tone(AGENT_TONE)
        answering = asyncio.create_task(
            callee.answer(ring_ms=2500, auth=("carrier-user", "carrier-pass"), headers={"X-Carrier": "abc"})
        )
        created = await asyncio.to_thread(
            lk, "sip", "participant", "create", "participant.json", target=call_bridge,
            input_files={"participant.json": json.dumps(participant)}, timeout=60,
        )  # fmt: skip
        assert "SCL_" in created.stdout, created.stdout

        # While it rang, the room heard the dial tone (350 + 440 Hz) from the SIP participant.
        ringing = agent.heard("sip-test")[: 2 * RATE]
        assert rms_dbfs(ringing) > -40, "no dial tone in the room while ringing"
        assert min(band_db(ringing, RATE, 350), band_db(ringing, RATE, 440)) > band_db(ringing, RATE, 1000) + 20

        attrs = await attributes(livekit_api, room, "sip-test")
        assert attrs["sip.phoneNumber"] == CALLEE
        assert attrs["sip.trunkPhoneNumber"] == TRUNK_NUMBER
        assert attrs["sip.trunkID"] == trunk_id
        assert attrs["sip.callID"].startswith("SCL_")
        assert attrs["sip.callIDFull"]

        # Audio both ways.
        heard = await agent.wait_heard("sip-test", 2.0 * len(ringing) / RATE + 2.0)
        assert abs(dominant_frequency(heard[-RATE:], RATE) - CALLEE_TONE) < 5
        at_phone = await rtp_phone.wait_heard(5.0)
        assert abs(dominant_frequency(at_phone[-PHONE_RATE:], PHONE_RATE) - AGENT_TONE) < 5

        # The DTMF string arrived in order, with the two 'w' (0.5 s each) between '#' and '4' on the bridge's
        # media clock (the events' RTP timestamps, which arrival delays on a loaded machine do not shift).
        for _ in range(300):
            if len(rtp_phone.digits) >= 8:
                break
            await asyncio.sleep(0.1)
        assert rtp_phone.digits == list("*123#456")
        gaps = [(b - a) % 2**32 / PHONE_RATE for a, b in itertools.pairwise(rtp_phone.digit_stamps)]
        assert gaps[4] >= 1.0, gaps
        assert (await attributes(livekit_api, room, "sip-test"))["sip.callStatus"] == "active"

        # Removing the participant hangs up the call.
        await livekit_api.room.remove_participant(api.RoomParticipantIdentity(room=room, identity="sip-test"))
        (await answering).check()
    assert "X-Carrier: abc" in (await answering).messages


async def test_agent_example_through_livekit_api(
    tmp_path: Path, bridge_api: api.LiveKitAPI, livekit_api: api.LiveKitAPI, rtp_phone: RtpPhone
) -> None:
    """The docs' agent code: create_sip_participant with wait_until_answered returns once the callee picked up."""
    callee = SippCallee(tmp_path / "callee", rtp_phone.port)
    trunk_id = await outbound_trunk(bridge_api, callee.address)
    answering = asyncio.create_task(callee.answer(ring_ms=1000))
    info = await bridge_api.sip.create_sip_participant(
        api.CreateSIPParticipantRequest(
            room_name="agent-room", sip_trunk_id=trunk_id, sip_call_to=CALLEE, participant_identity=CALLEE,
            wait_until_answered=True, hide_phone_number=True, headers={"X-Campaign": "spring"},
        )
    )  # fmt: skip
    assert (info.participant_identity, info.room_name) == (CALLEE, "agent-room")
    attrs = await attributes(livekit_api, "agent-room", CALLEE)
    assert attrs["sip.callStatus"] == "active" and "sip.phoneNumber" not in attrs
    await livekit_api.room.remove_participant(api.RoomParticipantIdentity(room="agent-room", identity=CALLEE))
    result = await answering
    result.check()
    assert "X-Campaign: spring" in result.messages


@pytest.mark.parametrize(
    ("status", "code", "what"),
    [
        ("486 Busy Here", "resource_exhausted", "INVITE failed"),
        ("603 Decline", "permission_denied", "unexpected status from INVITE response"),
        ("404 Not Found", "not_found", "INVITE failed"),
    ],
)
async def test_rejected_call_is_a_twirp_error_with_the_sip_status(
    status: str, code: str, what: str, tmp_path: Path, bridge_api: api.LiveKitAPI, livekit_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
) -> None:  # fmt: skip
    callee = SippCallee(tmp_path / "callee", rtp_phone.port)
    trunk_id = await outbound_trunk(bridge_api, callee.address)
    rejecting = asyncio.create_task(callee.reject(status))
    request = api.CreateSIPParticipantRequest(
        sip_trunk_id=trunk_id, sip_call_to=CALLEE, room_name="rejected", wait_until_answered=True
    )
    with pytest.raises(api.TwirpError) as failure:
        await bridge_api.sip.create_sip_participant(request)
    (await rejecting).check()
    assert failure.value.code == code
    number, reason = status.split(" ", 1)
    assert failure.value.message == f"{what}: sip status: {number}: {reason}"  # livekit/sip's wording
    assert failure.value.metadata["sip_status_code"] == status.split()[0]
    assert failure.value.metadata["sip_status"] == status.split(" ", 1)[1]
    await wait_gone(livekit_api, "rejected", f"sip_{CALLEE}")


async def test_no_answer_cancels_at_the_ringing_timeout(
    tmp_path: Path, bridge_api: api.LiveKitAPI, rtp_phone: RtpPhone
) -> None:
    callee = SippCallee(tmp_path / "callee", rtp_phone.port)
    trunk_id = await outbound_trunk(bridge_api, callee.address)
    ringing = asyncio.create_task(callee.ring_until_cancelled())
    request = api.CreateSIPParticipantRequest(
        sip_trunk_id=trunk_id,
        sip_call_to=CALLEE,
        room_name="no-answer",
        wait_until_answered=True,
    )
    request.ringing_timeout.FromSeconds(2)
    with pytest.raises(api.TwirpError) as failure:
        await bridge_api.sip.create_sip_participant(request)
    assert failure.value.code == "deadline_exceeded"
    assert failure.value.metadata["sip_status_code"] == "408"
    (await ringing).check()  # the callee saw our CANCEL


async def test_unreachable_trunk(bridge_api: api.LiveKitAPI) -> None:
    closed = "127.0.0.1:9"  # nothing listens on the discard port: the TCP connection is refused
    trunk_id = await outbound_trunk(bridge_api, closed, transport=api.SIPTransport.SIP_TRANSPORT_TCP)
    request = api.CreateSIPParticipantRequest(
        sip_trunk_id=trunk_id, sip_call_to=CALLEE, room_name="unreachable", wait_until_answered=True
    )
    with pytest.raises(api.TwirpError) as failure:
        await bridge_api.sip.create_sip_participant(request)
    assert failure.value.metadata["sip_status_code"] == "503"


async def test_without_wait_the_failure_shows_as_the_participant_leaving(
    tmp_path: Path, bridge_api: api.LiveKitAPI, livekit_api: api.LiveKitAPI, rtp_phone: RtpPhone
) -> None:
    callee = SippCallee(tmp_path / "callee", rtp_phone.port)
    trunk_id = await outbound_trunk(bridge_api, callee.address)
    rejecting = asyncio.create_task(callee.reject("486 Busy Here"))
    info = await bridge_api.sip.create_sip_participant(
        api.CreateSIPParticipantRequest(sip_trunk_id=trunk_id, sip_call_to=CALLEE, room_name="async-call")
    )
    assert info.participant_identity == f"sip_{CALLEE}" and info.room_name == "async-call"
    assert info.participant_id.startswith("PA_") and info.sip_call_id.startswith("SCL_")
    (await rejecting).check()
    await wait_gone(livekit_api, "async-call", f"sip_{CALLEE}")


async def test_early_media_is_played_into_the_room_while_ringing(
    tmp_path: Path, livekit_server: LiveKitServer, bridge_api: api.LiveKitAPI, livekit_api: api.LiveKitAPI,
    rtp_phone: RtpPhone,
) -> None:  # fmt: skip
    callee = SippCallee(tmp_path / "callee", rtp_phone.port)
    rtp_phone.play_tone(CALLEE_TONE)  # the carrier's announcement, then the callee
    trunk_id = await outbound_trunk(bridge_api, callee.address)
    async with TestParticipant(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, "early", "agent"
    ) as agent:
        answering = asyncio.create_task(callee.answer(ring_ms=6000, early_media=True))
        await bridge_api.sip.create_sip_participant(
            api.CreateSIPParticipantRequest(sip_trunk_id=trunk_id, sip_call_to=CALLEE, room_name="early")
        )
        heard = await agent.wait_heard(f"sip_{CALLEE}", 2.0, within=20)
        assert (await attributes(livekit_api, "early", f"sip_{CALLEE}"))["sip.callStatus"] == "ringing"
        assert abs(dominant_frequency(heard[-RATE:], RATE) - CALLEE_TONE) < 5
        await livekit_api.room.remove_participant(api.RoomParticipantIdentity(room="early", identity=f"sip_{CALLEE}"))
        await answering  # sipp may see CANCEL or BYE, depending on timing: either ends it


async def test_bad_requests_name_the_field(bridge_api: api.LiveKitAPI) -> None:
    cases = [
        (api.CreateSIPParticipantRequest(sip_trunk_id="ST_x", room_name="r"), "invalid_argument", "sip_call_to"),
        (api.CreateSIPParticipantRequest(sip_trunk_id="ST_x", sip_call_to="+1"), "invalid_argument", "room_name"),
        (api.CreateSIPParticipantRequest(sip_trunk_id="ST_nope", sip_call_to="+1", room_name="r"), "not_found",
         "sip_trunk_id"),
    ]  # fmt: skip
    for request, code, field in cases:
        with pytest.raises(api.TwirpError) as failure:
            await bridge_api.sip.create_sip_participant(request)
        assert failure.value.code == code and field in failure.value.message


@pytest.mark.parametrize("accepted", [True, False])
async def test_transfer(
    accepted: bool, tmp_path: Path, call_bridge: BridgeProcess, livekit_server: LiveKitServer,
    bridge_api: api.LiveKitAPI, livekit_api: api.LiveKitAPI, rtp_phone: RtpPhone,
) -> None:  # fmt: skip
    """An agent transfers an inbound caller: an accepted REFER ends our leg; a refused one is an error and the
    call goes on with audio."""
    await configure(bridge_api, direct("transfer-room"))
    rtp_phone.play_tone(CALLEE_TONE)
    phone = SippPhone(tmp_path / "phone", call_bridge.sip_port, rtp_phone.port)
    refer_status = "202 Accepted" if accepted else "603 Decline"
    calling = asyncio.create_task(phone.call_and_get_transferred(refer_status=refer_status))
    identity = f"sip_{CALLER}"
    async with TestParticipant(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, "transfer-room", "agent"
    ) as agent:
        await agent.publish_tone(AGENT_TONE)
        await agent.wait_heard(identity, 1.0, within=30)
        request = api.TransferSIPParticipantRequest(
            room_name="transfer-room", participant_identity=identity, transfer_to="tel:+15105550199",
            headers={"X-Reason": "escalation"},
        )  # fmt: skip
        if accepted:
            response = await bridge_api.sip.transfer_sip_participant(request)
            assert response.status == api.SIPTransferStatus.STS_TRANSFER_SUCCESSFUL
            assert response.reason == api.SIPTransferReason.STR_COMPLETED
            assert (response.sip_status.code, response.sip_status.status) == (200, "OK")  # the NOTIFY's sipfrag
            assert response.transfer_id.startswith("STR_")
            await wait_gone(livekit_api, "transfer-room", identity)
        else:
            with pytest.raises(api.TwirpError) as failure:
                await bridge_api.sip.transfer_sip_participant(request)
            assert failure.value.metadata["sip_status_code"] == "603"
            before = len(agent.heard(identity))
            heard = await agent.wait_heard(identity, before / RATE + 1.0)
            assert abs(dominant_frequency(heard[-RATE:], RATE) - CALLEE_TONE) < 5  # still talking
            await livekit_api.room.remove_participant(
                api.RoomParticipantIdentity(room="transfer-room", identity=identity)
            )
        result = await calling
    result.check()
    assert "Refer-To: <tel:+15105550199>" in result.messages and "X-Reason: escalation" in result.messages


@pytest.mark.parametrize(
    ("fields", "changed"),
    [
        ({"sip_request_uri": api.SIPRequestDest(raw="sip:333@pbx.elsewhere.test")}, "request"),
        ({"sip_to_header": api.SIPNamedDest(display_name="Desk", values=api.SIPUri(user="555", host="to.test"))}, "to"),
        ({"to_user_override": "ext-7"}, "to"),
        ({"sip_from_header": api.SIPNamedDest(display_name="LK", raw="sip:111@from.test")}, "from"),
    ],
)
async def test_each_override_field_changes_exactly_its_header_on_the_wire(
    fields: dict[str, object], changed: str, tmp_path: Path, bridge_api: api.LiveKitAPI, rtp_phone: RtpPhone
) -> None:
    """sip_request_uri, sip_to_header, to_user_override and sip_from_header each change the one header they name;
    the INVITE still goes to the trunk."""
    callee = SippCallee(tmp_path / "callee", rtp_phone.port)
    trunk_id = await outbound_trunk(bridge_api, callee.address)
    rejecting = asyncio.create_task(callee.reject("486 Busy Here"))
    request = api.CreateSIPParticipantRequest(
        sip_trunk_id=trunk_id, sip_call_to=CALLEE, room_name="overrides", wait_until_answered=True,
        **fields,  # type: ignore[arg-type]
    )  # fmt: skip
    with pytest.raises(api.TwirpError):
        await bridge_api.sip.create_sip_participant(request)
    invite = (await rejecting).messages.split("INVITE sip:", 1)[1].split("\n\n", 1)[0]
    request_line = "sip:" + invite.split(" SIP/2.0", 1)[0]
    header = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in invite.splitlines()[1:] if ":" in line}
    default = f"sip:{CALLEE}@{callee.address}"
    expected = {
        "request": "sip:333@pbx.elsewhere.test" if changed == "request" else default,
        "to": {"to": '"Desk" <sip:555@to.test>', "from": f"<{default}>", "request": f"<{default}>"}[changed],
    }
    if "to_user_override" in fields:
        expected["to"] = f"<sip:ext-7@{callee.address}>"
    assert request_line == expected["request"]
    assert header["To"] == expected["to"]
    if changed == "from":
        assert header["From"].startswith('"LK" <sip:111@from.test>;tag=')
    else:
        assert header["From"].startswith(f'"{TRUNK_NUMBER}" <sip:{TRUNK_NUMBER}@')


@pytest.mark.parametrize(
    ("media", "m_line"),
    [
        (api.SIPMediaConfig(only_listed_codecs=True, codecs=[api.SIPCodec(name="PCMA")]), "RTP/AVP 8 101"),
        (api.SIPMediaConfig(codecs=[api.SIPCodec(name="PCMU")]), "RTP/AVP 9 0 8 111 101 110"),
    ],
)
async def test_media_codecs_decide_the_offer(
    media: api.SIPMediaConfig, m_line: str, tmp_path: Path, bridge_api: api.LiveKitAPI, rtp_phone: RtpPhone
) -> None:
    callee = SippCallee(tmp_path / "callee", rtp_phone.port)
    trunk_id = await outbound_trunk(bridge_api, callee.address)
    rejecting = asyncio.create_task(callee.reject("486 Busy Here"))
    request = api.CreateSIPParticipantRequest(
        sip_trunk_id=trunk_id, sip_call_to=CALLEE, room_name="codecs", wait_until_answered=True, media=media
    )
    with pytest.raises(api.TwirpError):
        await bridge_api.sip.create_sip_participant(request)
    offer = (await rejecting).messages.split("m=audio ", 1)[1].split("\n", 1)[0]
    assert offer.split(" ", 1)[1].strip() == m_line
