"""The same flows through livekit-api's Python client, the way the docs' Python examples call it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from harness.bridge import BridgeProcess, api_client
from livekit import api
from livekit.protocol.sip import ListSIPDispatchRuleRequest, ListSIPInboundTrunkRequest

# The docs' Python examples use the *_sip_* method names, which livekit-api now marks deprecated; we call them as
# the docs do.
pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
async def lkapi(bridge: BridgeProcess) -> AsyncIterator[api.LiveKitAPI]:
    async with api_client(bridge) as client:
        yield client


async def test_inbound_trunk_lifecycle(lkapi: api.LiveKitAPI) -> None:
    trunk = await lkapi.sip.create_sip_inbound_trunk(
        api.CreateSIPInboundTrunkRequest(
            trunk=api.SIPInboundTrunkInfo(name="My trunk", numbers=["+15105550100"], krisp_enabled=True)
        )
    )
    assert trunk.sip_trunk_id.startswith("ST_") and trunk.krisp_enabled

    updated = await lkapi.sip.update_sip_inbound_trunk_fields(
        trunk_id=trunk.sip_trunk_id, allowed_numbers=["+13105550100", "+17145550100"], name="My updated trunk"
    )
    assert updated.name == "My updated trunk"
    assert list(updated.allowed_numbers) == ["+13105550100", "+17145550100"]
    assert list(updated.numbers) == ["+15105550100"] and updated.krisp_enabled

    replaced = await lkapi.sip.update_sip_inbound_trunk(
        trunk.sip_trunk_id,
        api.SIPInboundTrunkInfo(numbers=["+15105550100"], allowed_numbers=["+13105550100"], name="Replaced"),
    )
    assert (replaced.sip_trunk_id, replaced.name, replaced.krisp_enabled) == (trunk.sip_trunk_id, "Replaced", False)

    listed = await lkapi.sip.list_sip_inbound_trunk(ListSIPInboundTrunkRequest(numbers=["15105550100"]))
    assert [t.sip_trunk_id for t in listed.items] == [trunk.sip_trunk_id]
    await lkapi.sip.delete_sip_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=trunk.sip_trunk_id))
    assert not (await lkapi.sip.list_sip_inbound_trunk(ListSIPInboundTrunkRequest())).items


async def test_dispatch_rule_lifecycle_and_errors(lkapi: api.LiveKitAPI) -> None:
    rule = await lkapi.sip.create_sip_dispatch_rule(
        api.CreateSIPDispatchRuleRequest(
            dispatch_rule=api.SIPDispatchRuleInfo(
                rule=api.SIPDispatchRule(dispatch_rule_individual=api.SIPDispatchRuleIndividual(room_prefix="call-")),
                name="My dispatch rule",
                room_config=api.RoomConfiguration(
                    agents=[api.RoomAgentDispatch(agent_name="inbound-agent", metadata="job dispatch metadata")]
                ),
            )
        )
    )
    updated = await lkapi.sip.update_sip_dispatch_rule_fields(
        rule_id=rule.sip_dispatch_rule_id,
        metadata='{"is_internal": false}',
        attributes={"<updated_key1>": "<updated_value1>"},
    )
    assert updated.metadata == '{"is_internal": false}'
    assert dict(updated.attributes) == {"<updated_key1>": "<updated_value1>"}
    assert updated.room_config.agents[0].agent_name == "inbound-agent"

    with pytest.raises(api.TwirpError) as conflict:
        await lkapi.sip.create_sip_dispatch_rule(
            api.CreateSIPDispatchRuleRequest(
                dispatch_rule=api.SIPDispatchRuleInfo(
                    rule=api.SIPDispatchRule(dispatch_rule_direct=api.SIPDispatchRuleDirect(room_name="open-room"))
                )
            )
        )
    assert conflict.value.code == "invalid_argument" and rule.sip_dispatch_rule_id in conflict.value.message

    listed = await lkapi.sip.list_sip_dispatch_rule(ListSIPDispatchRuleRequest())
    assert [r.sip_dispatch_rule_id for r in listed.items] == [rule.sip_dispatch_rule_id]
    await lkapi.sip.delete_sip_dispatch_rule(
        api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
    )
    with pytest.raises(api.TwirpError) as missing:
        await lkapi.sip.delete_sip_dispatch_rule(
            api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
        )
    assert missing.value.code == "not_found"


async def test_outbound_trunk_and_unavailable_calls(lkapi: api.LiveKitAPI) -> None:
    trunk = await lkapi.sip.create_sip_outbound_trunk(
        api.CreateSIPOutboundTrunkRequest(
            trunk=api.SIPOutboundTrunkInfo(
                name="My outbound trunk", address="sip.telnyx.com", numbers=["+15105550100"],
                auth_username="user", auth_password="pass",
            )
        )
    )  # fmt: skip
    updated = await lkapi.sip.update_sip_outbound_trunk_fields(trunk_id=trunk.sip_trunk_id, name="Renamed")
    assert (updated.name, updated.address) == ("Renamed", "sip.telnyx.com")
    # This bridge has no LiveKit server to put the call's participant in: the call fails before dialling.
    with pytest.raises(api.TwirpError) as unavailable:
        await lkapi.sip.create_sip_participant(
            api.CreateSIPParticipantRequest(sip_trunk_id=trunk.sip_trunk_id, sip_call_to="+15105550111", room_name="r")
        )
    assert unavailable.value.code == "unavailable" and "cannot join room 'r'" in unavailable.value.message
