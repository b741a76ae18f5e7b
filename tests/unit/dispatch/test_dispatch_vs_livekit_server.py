"""Differential check: our conflict checks accept and refuse what a real livekit-server does.

The same sequence of CreateSIPInboundTrunk / CreateSIPDispatchRule calls goes to livekit-server
(over its Twirp API, configuration in a real Redis) and through dispatch.validate; each step must be
accepted or refused alike, and livekit-server's refusal code must be the one our errors carry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

import pytest
import redis
from harness.processes import LiveKitServer, RedisServer
from livekit.api import LiveKitAPI, TwirpError
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    CreateSIPInboundTrunkRequest,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleIndividual,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
)

from dispatch.errors import ConflictError, DispatchError
from dispatch.validate import check_dispatch_rule_conflicts, check_inbound_trunk_conflicts

pytestmark = pytest.mark.integration

Item = TypeVar("Item")

SIP_TABLES = ("sip_trunk", "sip_inbound_trunk", "sip_outbound_trunk", "sip_dispatch_rule")


@pytest.fixture
async def livekit_api(redis_server: RedisServer, livekit_server_redis: LiveKitServer) -> AsyncIterator[LiveKitAPI]:
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    try:
        client.delete(*SIP_TABLES)
    finally:
        client.close()
    api = LiveKitAPI(livekit_server_redis.http_url, livekit_server_redis.api_key, livekit_server_redis.api_secret)
    try:
        yield api
    finally:
        await api.aclose()


def T(numbers: Sequence[str] = (), allowed: Sequence[str] = ()) -> SIPInboundTrunkInfo:
    return SIPInboundTrunkInfo(numbers=numbers, allowed_numbers=allowed, auth_username="u", auth_password="p")


TRUNK_SEQUENCES = {
    "catch-all twice": [T(), T()],
    "catch-all and specific": [T(), T(["+15105550100"])],
    "same number, + and no +": [T(["+15105550100"]), T(["15105550100"])],
    "same number, one caller-restricted": [T(["+15105550100"]), T(["+15105550100"], ["+13105550100"])],
    "same number, same caller in two forms": [
        T(["+15105550100"], ["+13105550100"]),
        T(["15105550100"], ["13105550100"]),
    ],
    "shared number among several": [T(["+1510555010", "+1510555011"]), T(["+1510555012", "+1510555011"])],
    "duplicate forms within one trunk": [T(["+15105550100", "15105550100"], ["+13105550100", "13105550100"])],
}


@pytest.mark.parametrize("sequence", TRUNK_SEQUENCES.values(), ids=TRUNK_SEQUENCES.keys())
async def test_inbound_trunk_conflicts_agree(livekit_api: LiveKitAPI, sequence: list[SIPInboundTrunkInfo]) -> None:
    stored: list[SIPInboundTrunkInfo] = []
    for trunk in sequence:
        ours = _refusal(check_inbound_trunk_conflicts, [*stored, trunk])
        try:
            created = await livekit_api.sip.create_inbound_trunk(CreateSIPInboundTrunkRequest(trunk=trunk))
        except TwirpError as e:
            assert ours is not None, f"livekit-server refused what we accept: {e.message}"
            assert e.code == ours.code
            continue
        assert ours is None, f"livekit-server accepted what we refuse: {ours}"
        stored.append(created)


def R(
    rule: SIPDispatchRule,
    trunks: Sequence[str] = (),
    inbound: Sequence[str] = (),
    numbers: Sequence[str] = (),
) -> SIPDispatchRuleInfo:
    return SIPDispatchRuleInfo(rule=rule, trunk_ids=trunks, inbound_numbers=inbound, numbers=numbers)


DIRECT = SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name="open-room"))
PIN = SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name="safe-room", pin="12345"))
INDIVIDUAL = SIPDispatchRule(dispatch_rule_individual=SIPDispatchRuleIndividual(room_prefix="call-"))

RULE_SEQUENCES = {
    "two open catch-alls of different kinds": [R(INDIVIDUAL), R(DIRECT)],
    "open and PIN catch-alls": [R(DIRECT), R(PIN)],
    "catch-all and trunk-specific": [R(DIRECT), R(INDIVIDUAL, ["ST_a"])],
    "overlapping trunk lists": [R(DIRECT, ["ST_a"]), R(INDIVIDUAL, ["ST_b", "ST_a"])],
    "disjoint trunk lists": [R(DIRECT, ["ST_a"]), R(INDIVIDUAL, ["ST_b"])],
    "same caller in two forms": [R(DIRECT, inbound=["+13105550100"]), R(INDIVIDUAL, inbound=["13105550100"])],
    "caller-specific and generic": [R(DIRECT), R(INDIVIDUAL, inbound=["+13105550100"])],
    "same called number": [R(DIRECT, numbers=["+15105550100"]), R(INDIVIDUAL, numbers=["+15105550100"])],
}


@pytest.mark.parametrize("sequence", RULE_SEQUENCES.values(), ids=RULE_SEQUENCES.keys())
async def test_dispatch_rule_conflicts_agree(livekit_api: LiveKitAPI, sequence: list[SIPDispatchRuleInfo]) -> None:
    stored: list[SIPDispatchRuleInfo] = []
    for rule in sequence:
        ours = _refusal(check_dispatch_rule_conflicts, [*stored, rule])
        try:
            created = await livekit_api.sip.create_dispatch_rule(CreateSIPDispatchRuleRequest(dispatch_rule=rule))
        except TwirpError as e:
            assert ours is not None, f"livekit-server refused what we accept: {e.message}"
            assert e.code == ours.code
            continue
        assert ours is None, f"livekit-server accepted what we refuse: {ours}"
        stored.append(created)


async def test_known_difference_rule_listing_one_number_twice(livekit_api: LiveKitAPI) -> None:
    """livekit-server refuses a rule listing one number in two forms (it conflicts with itself); we accept it."""
    rule = R(DIRECT, numbers=["+15105550100", "15105550100"])
    check_dispatch_rule_conflicts([rule])
    with pytest.raises(TwirpError) as refused:
        await livekit_api.sip.create_dispatch_rule(CreateSIPDispatchRuleRequest(dispatch_rule=rule))
    assert refused.value.code == "invalid_argument"


def _refusal(check: Callable[[list[Item]], None], items: list[Item]) -> DispatchError | None:
    """The conflict our check reports for ``items``, or None."""
    try:
        check(items)
    except ConflictError as e:
        return e
    return None
