"""Trunks and dispatch rules for call tests, created through the bridge's SIP API."""

from __future__ import annotations

from livekit import api

TRUNK_NUMBER = "+15105550100"
CALLER = "+13105550100"


async def configure(
    bridge_api: api.LiveKitAPI, rule: api.SIPDispatchRuleInfo, **trunk_fields: object
) -> api.SIPInboundTrunkInfo:
    """One inbound trunk (answering TRUNK_NUMBER unless `numbers` is given) and one dispatch rule."""
    trunk_fields.setdefault("numbers", [TRUNK_NUMBER])
    trunk = await bridge_api.sip.create_inbound_trunk(
        api.CreateSIPInboundTrunkRequest(trunk=api.SIPInboundTrunkInfo(name="test", **trunk_fields))  # type: ignore[arg-type]
    )
    await bridge_api.sip.create_dispatch_rule(api.CreateSIPDispatchRuleRequest(dispatch_rule=rule))
    return trunk


def direct(room: str, pin: str = "", **fields: object) -> api.SIPDispatchRuleInfo:
    rule = api.SIPDispatchRule(dispatch_rule_direct=api.SIPDispatchRuleDirect(room_name=room, pin=pin))
    return api.SIPDispatchRuleInfo(rule=rule, **fields)  # type: ignore[arg-type]


def individual(room_prefix: str) -> api.SIPDispatchRuleInfo:
    rule = api.SIPDispatchRule(dispatch_rule_individual=api.SIPDispatchRuleIndividual(room_prefix=room_prefix))
    return api.SIPDispatchRuleInfo(rule=rule)
