"""Differential check: our conflict checks accept and refuse what a real livekit-server does.

The same sequence of CreateSIPInboundTrunk / CreateSIPDispatchRule calls goes to livekit-server
(over its Twirp API, configuration in a real Redis) and through dispatch.validate; each step must be
accepted or refused alike, and livekit-server's refusal code must be the one our errors carry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import pytest
import redis
from harness.processes import LiveKitServer, RedisServer
from livekit.api import LiveKitAPI, TwirpError
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    CreateSIPInboundTrunkRequest,
    CreateSIPOutboundTrunkRequest,
    SIPCodec,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleIndividual,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
    SIPMediaConfig,
    SIPOutboundTrunkInfo,
)

from dispatch.errors import DispatchError
from dispatch.validate import (
    check_dispatch_rule_conflicts,
    check_inbound_trunk_conflicts,
    validate_dispatch_rule,
    validate_inbound_trunk,
    validate_outbound_trunk,
)

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
    await _create_alike(
        sequence,
        check_inbound_trunk_conflicts,
        lambda trunk: livekit_api.sip.create_inbound_trunk(CreateSIPInboundTrunkRequest(trunk=trunk)),
    )


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
    await _create_alike(
        sequence,
        check_dispatch_rule_conflicts,
        lambda rule: livekit_api.sip.create_dispatch_rule(CreateSIPDispatchRuleRequest(dispatch_rule=rule)),
    )


async def test_known_difference_rule_listing_one_number_twice(livekit_api: LiveKitAPI) -> None:
    """livekit-server refuses a rule listing one number in two forms (it conflicts with itself); we accept it."""
    rule = R(DIRECT, numbers=["+15105550100", "15105550100"])
    check_dispatch_rule_conflicts([rule])
    with pytest.raises(TwirpError) as refused:
        await livekit_api.sip.create_dispatch_rule(CreateSIPDispatchRuleRequest(dispatch_rule=rule))
    assert refused.value.code == "invalid_argument"


async def _create_alike(
    sequence: Sequence[Item], check: Callable[[list[Item]], None], create: Callable[[Item], Awaitable[Item]]
) -> None:
    """Create each item in livekit-server and check it with ours against those created so far: each step must be
    accepted or refused alike, with livekit-server's refusal code the one our error carries."""
    stored: list[Item] = []
    for item in sequence:
        ours = _refusal(check, [*stored, item])
        try:
            created = await create(item)
        except TwirpError as e:
            assert ours is not None, f"livekit-server refused what we accept: {e.message}"
            assert e.code == ours.code
            continue
        assert ours is None, f"livekit-server accepted what we refuse: {ours}"
        stored.append(created)


def _refusal(check: Callable[[Item], None], item: Item) -> DispatchError | None:
    """The error our check raises for ``item``, or None."""
    try:
        check(item)
    except DispatchError as e:
        return e
    return None


AGREE, STRICTER = "agree", "stricter"
"""Either both sides decide alike, or we refuse a value livekit-server stores and then silently ignores."""

INBOUND_FIELDS = {
    "no number, address or credentials": (SIPInboundTrunkInfo(name="open"), AGREE),
    "user name only": (SIPInboundTrunkInfo(auth_username="u"), AGREE),
    "reserved header": (SIPInboundTrunkInfo(numbers=["+1"], headers={"Call-ID": "x"}), AGREE),
    "header name with a space": (SIPInboundTrunkInfo(numbers=["+1"], headers={"X Bad": "x"}), AGREE),
    "codec without a name": (SIPInboundTrunkInfo(numbers=["+1"], media=SIPMediaConfig(codecs=[SIPCodec()])), AGREE),
    "comma-separated addresses": (SIPInboundTrunkInfo(allowed_addresses=["10.0.0.1, 10.0.0.2"]), STRICTER),
    "empty number": (SIPInboundTrunkInfo(numbers=["+1", ""]), STRICTER),
}


@pytest.mark.parametrize(("trunk", "relation"), INBOUND_FIELDS.values(), ids=INBOUND_FIELDS.keys())
async def test_inbound_trunk_fields_agree(livekit_api: LiveKitAPI, trunk: SIPInboundTrunkInfo, relation: str) -> None:
    ours = _refusal(validate_inbound_trunk, trunk)
    theirs = await _server_refusal(livekit_api.sip.create_inbound_trunk(CreateSIPInboundTrunkRequest(trunk=trunk)))
    _compare(ours, theirs, relation)


OUTBOUND_FIELDS = {
    "no numbers": (SIPOutboundTrunkInfo(address="sip.example.com"), AGREE),
    "no address": (SIPOutboundTrunkInfo(numbers=["+1"]), AGREE),
    "address is a SIP URI": (SIPOutboundTrunkInfo(numbers=["+1"], address="sip:pbx@example.com"), AGREE),
    "valid": (SIPOutboundTrunkInfo(numbers=["+1"], address="sip.example.com:5060"), AGREE),
}


@pytest.mark.parametrize(("trunk", "relation"), OUTBOUND_FIELDS.values(), ids=OUTBOUND_FIELDS.keys())
async def test_outbound_trunk_fields_agree(livekit_api: LiveKitAPI, trunk: SIPOutboundTrunkInfo, relation: str) -> None:
    ours = _refusal(validate_outbound_trunk, trunk)
    theirs = await _server_refusal(livekit_api.sip.create_outbound_trunk(CreateSIPOutboundTrunkRequest(trunk=trunk)))
    _compare(ours, theirs, relation)


async def test_dispatch_rule_without_rule_is_refused_alike(livekit_api: LiveKitAPI) -> None:
    rule = SIPDispatchRuleInfo(name="no rule")
    ours = _refusal(validate_dispatch_rule, rule)
    theirs = await _server_refusal(
        livekit_api.sip.create_dispatch_rule(CreateSIPDispatchRuleRequest(dispatch_rule=rule))
    )
    _compare(ours, theirs, AGREE)


async def _server_refusal(call: Awaitable[object]) -> TwirpError | None:
    try:
        await call
    except TwirpError as e:
        return e
    return None


def _compare(ours: DispatchError | None, theirs: TwirpError | None, relation: str) -> None:
    if relation == STRICTER:
        assert ours is not None and theirs is None, (ours, theirs)
        return
    assert (ours is None) == (theirs is None), (ours, theirs and theirs.message)
    if ours is not None and theirs is not None:
        assert theirs.code == ours.code
