"""Field validation and conflict checks for trunks and dispatch rules (what Create/Update enforce)."""

from __future__ import annotations

import pytest
from google.protobuf.duration_pb2 import Duration
from livekit.protocol.sip import (
    SIPCodec,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleIndividual,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
    SIPMediaConfig,
    SIPOutboundTrunkInfo,
)

from dispatch.errors import ConflictError, DispatchError, ValidationError
from dispatch.validate import (
    check_dispatch_rule_conflicts,
    check_inbound_trunk_conflicts,
    validate_dispatch_rule,
    validate_inbound_trunk,
    validate_outbound_trunk,
)


def direct(room: str = "room", pin: str = "") -> SIPDispatchRule:
    return SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name=room, pin=pin))


def individual(prefix: str = "call-", pin: str = "") -> SIPDispatchRule:
    return SIPDispatchRule(dispatch_rule_individual=SIPDispatchRuleIndividual(room_prefix=prefix, pin=pin))


def test_error_codes_are_twirp_codes() -> None:
    assert ValidationError("x").code == "invalid_argument"
    assert ConflictError("x", "a", "b").code == "invalid_argument"
    assert issubclass(ConflictError, DispatchError) and issubclass(ValidationError, DispatchError)


VALID_INBOUND = [
    SIPInboundTrunkInfo(numbers=["+15105550100"]),
    SIPInboundTrunkInfo(allowed_addresses=["203.0.113.0/24"]),
    SIPInboundTrunkInfo(auth_username="u", auth_password="p"),
    SIPInboundTrunkInfo(auth_username="only-user"),
    SIPInboundTrunkInfo(
        numbers=["+1"],
        allowed_addresses=["2001:db8::/32", "[2001:db8::1]", "sip.example.com", "10.0.0.1"],
        headers={"X-Custom": "v\twith tab", "P-Asserted-Identity": "<sip:a@b>"},
        headers_to_attributes={"X-Foo": "foo"},
        attributes_to_headers={"foo": "X-Foo"},
        media=SIPMediaConfig(codecs=[SIPCodec(name="PCMU")], media_timeout=Duration(seconds=600)),
    ),
]


@pytest.mark.parametrize("trunk", VALID_INBOUND)
def test_valid_inbound_trunks(trunk: SIPInboundTrunkInfo) -> None:
    validate_inbound_trunk(trunk)


INVALID_INBOUND = [
    (SIPInboundTrunkInfo(name="open"), "trunk: for security"),
    (SIPInboundTrunkInfo(allowed_numbers=["+1"]), "trunk: for security"),
    (SIPInboundTrunkInfo(numbers=["+1", ""]), "trunk.numbers[1]: empty"),
    (SIPInboundTrunkInfo(numbers=["+1"], allowed_numbers=[""]), "trunk.allowed_numbers[0]"),
    (SIPInboundTrunkInfo(allowed_addresses=["1.2.3.4, 5.6.7.8"]), "trunk.allowed_addresses[0]"),
    (SIPInboundTrunkInfo(allowed_addresses=["sip://host"]), "trunk.allowed_addresses[0]"),
    (SIPInboundTrunkInfo(allowed_addresses=["10.0.0.0/33"]), "not a valid CIDR"),
    (SIPInboundTrunkInfo(allowed_addresses=["10.0.0.0/"]), "not a valid CIDR"),
    (SIPInboundTrunkInfo(allowed_addresses=[""]), "empty entry"),
    (SIPInboundTrunkInfo(numbers=["+1"], headers={"Call-ID": "x"}), "trunk.headers: header 'Call-ID'"),
    (SIPInboundTrunkInfo(numbers=["+1"], headers={"v": "x"}), "trunk.headers"),
    (SIPInboundTrunkInfo(numbers=["+1"], headers={"X Bad": "x"}), "invalid characters"),
    (SIPInboundTrunkInfo(numbers=["+1"], headers={"X-A": "a\nb"}), "control character"),
    (SIPInboundTrunkInfo(numbers=["+1"], headers={"X-A": "a" * 1025}), "too long"),
    (SIPInboundTrunkInfo(numbers=["+1"], headers={"X-" + "a" * 254: "v"}), "too long"),
    (SIPInboundTrunkInfo(numbers=["+1"], headers_to_attributes={"X:y": "a"}), "trunk.headers_to_attributes"),
    (SIPInboundTrunkInfo(numbers=["+1"], attributes_to_headers={"a": ""}), "trunk.attributes_to_headers"),
    (SIPInboundTrunkInfo(numbers=["+1"], media=SIPMediaConfig(codecs=[SIPCodec()])), "missing codec name"),
    (
        SIPInboundTrunkInfo(numbers=["+1"], media=SIPMediaConfig(codecs=[SIPCodec(name="PCMU/8000")])),
        "must not contain '/'",
    ),
    (
        SIPInboundTrunkInfo(numbers=["+1"], media=SIPMediaConfig(codecs=[SIPCodec(name="a b")])),
        "invalid codec",
    ),
    (
        SIPInboundTrunkInfo(numbers=["+1"], media=SIPMediaConfig(media_timeout=Duration(seconds=601))),
        "trunk.media.media_timeout",
    ),
    (
        SIPInboundTrunkInfo(numbers=["+1"], media=SIPMediaConfig(media_timeout=Duration(seconds=-1))),
        "must not be negative",
    ),
]


@pytest.mark.parametrize(("trunk", "message"), INVALID_INBOUND)
def test_invalid_inbound_trunks(trunk: SIPInboundTrunkInfo, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_inbound_trunk(trunk)
    assert message in str(caught.value)
    assert str(caught.value).startswith("trunk")


def test_reserved_header_names_may_still_be_mapped_to_attributes() -> None:
    validate_inbound_trunk(SIPInboundTrunkInfo(numbers=["+1"], headers_to_attributes={"From": "from"}))


@pytest.mark.parametrize(
    ("trunk", "message"),
    [
        (SIPOutboundTrunkInfo(address="sip.example.com"), "trunk.numbers: no trunk numbers"),
        (SIPOutboundTrunkInfo(numbers=["+1"]), "trunk.address: no outbound address"),
        (SIPOutboundTrunkInfo(numbers=["+1"], address="sip:pbx@example.com"), "not a SIP URI"),
        (SIPOutboundTrunkInfo(numbers=["+1"], address="sips:example.com"), "not a SIP URI"),
        (SIPOutboundTrunkInfo(numbers=["+1"], address="h;transport=tcp"), "transport parameter"),
        (SIPOutboundTrunkInfo(numbers=["+1"], address="h", from_host="a@b"), "trunk.from_host"),
        (SIPOutboundTrunkInfo(numbers=["+1"], address="h", headers={"Contact": "x"}), "trunk.headers"),
        (
            SIPOutboundTrunkInfo(numbers=["+1"], address="h", media=SIPMediaConfig(codecs=[SIPCodec()])),
            "trunk.media.codecs[0]",
        ),
    ],
)
def test_invalid_outbound_trunks(trunk: SIPOutboundTrunkInfo, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_outbound_trunk(trunk)
    assert message in str(caught.value)


def test_valid_outbound_trunk() -> None:
    validate_outbound_trunk(
        SIPOutboundTrunkInfo(numbers=["+1"], address="sip.telnyx.com:5060", from_host="example.com")
    )


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (SIPDispatchRuleInfo(), "dispatch_rule.rule: missing rule"),
        (SIPDispatchRuleInfo(rule=SIPDispatchRule()), "dispatch_rule.rule: missing rule"),
        (SIPDispatchRuleInfo(rule=direct(), trunk_ids=[""]), "dispatch_rule.trunk_ids[0]"),
        (SIPDispatchRuleInfo(rule=direct(), numbers=["+1", ""]), "dispatch_rule.numbers[1]"),
        (SIPDispatchRuleInfo(rule=direct(), inbound_numbers=[""]), "dispatch_rule.inbound_numbers[0]"),
        (
            SIPDispatchRuleInfo(rule=direct(), media=SIPMediaConfig(codecs=[SIPCodec()])),
            "dispatch_rule.media.codecs[0]",
        ),
    ],
)
def test_invalid_dispatch_rules(rule: SIPDispatchRuleInfo, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_dispatch_rule(rule)
    assert message in str(caught.value)


def test_valid_dispatch_rule() -> None:
    validate_dispatch_rule(SIPDispatchRuleInfo(rule=individual(), trunk_ids=["ST_a"], numbers=["+1"]))


def T(trunk_id: str, numbers: list[str] | None = None, allowed: list[str] | None = None) -> SIPInboundTrunkInfo:
    return SIPInboundTrunkInfo(
        sip_trunk_id=trunk_id, numbers=numbers or [], allowed_numbers=allowed or [], auth_username="u"
    )


TRUNK_SETS = [
    ("no trunks", [], None),
    ("one catch-all", [T("a")], None),
    ("two catch-all", [T("a"), T("b")], ("a", "b")),
    ("catch-all and specific", [T("a"), T("b", ["+1555"])], None),
    ("same number", [T("a", ["+1555"]), T("b", ["+1555"])], ("a", "b")),
    ("same number, + and no +", [T("a", ["+1555"]), T("b", ["1555"])], ("a", "b")),
    ("same number, punctuation", [T("a", ["+1 (555)"]), T("b", ["1-555"])], ("a", "b")),
    ("different numbers", [T("a", ["+1555"]), T("b", ["+1666"])], None),
    ("one shared of many", [T("a", ["+1", "+2"]), T("b", ["+3", "+2"])], ("a", "b")),
    ("same number, one restricted", [T("a", ["+1"]), T("b", ["+1"], ["+9"])], None),
    ("same number, disjoint callers", [T("a", ["+1"], ["+8"]), T("b", ["+1"], ["+9"])], None),
    ("same number, shared caller", [T("a", ["+1"], ["+8", "+9"]), T("b", ["+1"], ["9"])], ("a", "b")),
    ("duplicate forms in one trunk", [T("a", ["+1555", "1555"], ["+9", "9"])], None),
    ("new trunk conflicts", [T("a"), T("")], ("a", "")),
]


@pytest.mark.parametrize(("name", "trunks", "conflict"), TRUNK_SETS, ids=[c[0] for c in TRUNK_SETS])
def test_inbound_trunk_conflicts(
    name: str, trunks: list[SIPInboundTrunkInfo], conflict: tuple[str, str] | None
) -> None:
    if conflict is None:
        check_inbound_trunk_conflicts(trunks)
        return
    with pytest.raises(ConflictError) as caught:
        check_inbound_trunk_conflicts(trunks)
    assert (caught.value.first_id, caught.value.second_id) == conflict
    for trunk_id in conflict:
        assert repr(trunk_id or "<new>") in str(caught.value)


def test_updated_trunk_does_not_conflict_with_its_old_self() -> None:
    check_inbound_trunk_conflicts([T("a", ["+1"]), T("a", ["+1"], ["+2"])])


def R(
    rule_id: str,
    rule: SIPDispatchRule | None = None,
    trunks: list[str] | None = None,
    inbound: list[str] | None = None,
    numbers: list[str] | None = None,
) -> SIPDispatchRuleInfo:
    return SIPDispatchRuleInfo(
        sip_dispatch_rule_id=rule_id,
        name=f"rule {rule_id}",
        rule=rule or direct(),
        trunk_ids=trunks or [],
        inbound_numbers=inbound or [],
        numbers=numbers or [],
    )


RULE_SETS = [
    ("one catch-all", [R("a")], None),
    ("two open catch-alls, any kinds", [R("a", individual()), R("b", direct())], ("a", "b")),
    ("two catch-alls, same pin", [R("a", individual(pin="1")), R("b", direct(pin="1"))], ("a", "b")),
    ("catch-all open and with pin", [R("a", direct()), R("b", direct(pin="1"))], None),
    ("different pins", [R("a", direct(pin="1")), R("b", direct(pin="2"))], None),
    ("catch-all and trunk-specific", [R("a"), R("b", trunks=["ST_1"])], None),
    ("same trunk", [R("a", trunks=["ST_1"]), R("b", trunks=["ST_2", "ST_1"])], ("a", "b")),
    ("different trunks", [R("a", trunks=["ST_1"]), R("b", trunks=["ST_2"])], None),
    ("same pin, different trunks", [R("a", direct(pin="1"), ["t1"]), R("b", direct(pin="1"), ["t2"])], None),
    ("same caller", [R("a", inbound=["+1"]), R("b", inbound=["+2", "1"])], ("a", "b")),
    ("caller-specific and any caller", [R("a"), R("b", inbound=["+1"])], None),
    ("same called number", [R("a", numbers=["+1"]), R("b", numbers=["+1"])], ("a", "b")),
    ("same called, different caller", [R("a", inbound=["+8"], numbers=["+1"]), R("b", numbers=["+1"])], None),
    ("duplicate forms in one rule", [R("a", numbers=["+1", "1"], inbound=["+2", "2"])], None),
]


@pytest.mark.parametrize(("name", "rules", "conflict"), RULE_SETS, ids=[c[0] for c in RULE_SETS])
def test_dispatch_rule_conflicts(name: str, rules: list[SIPDispatchRuleInfo], conflict: tuple[str, str] | None) -> None:
    if conflict is None:
        check_dispatch_rule_conflicts(rules)
        return
    with pytest.raises(ConflictError) as caught:
        check_dispatch_rule_conflicts(rules)
    assert (caught.value.first_id, caught.value.second_id) == conflict
    assert "'a' ('rule a')" in str(caught.value) and "'b' ('rule b')" in str(caught.value)


def test_rule_without_kind_is_a_validation_error_in_conflict_checks() -> None:
    with pytest.raises(ValidationError, match=r"dispatch_rule\.rule"):
        check_dispatch_rule_conflicts([SIPDispatchRuleInfo(sip_dispatch_rule_id="x")])
