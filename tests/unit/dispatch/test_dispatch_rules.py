"""Dispatch-rule selection: trunk-specific vs catch-all, priorities, PIN handling, numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from livekit.protocol.sip import (
    SIPDispatchRule,
    SIPDispatchRuleCallee,
    SIPDispatchRuleDirect,
    SIPDispatchRuleIndividual,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
)

from dispatch.call import InviteFacts
from dispatch.rules import RuleVerdict, rule_priority, select_dispatch_rule

TO = "+15105550100"
FROM = "+13105550100"
TRUNK = SIPInboundTrunkInfo(sip_trunk_id="ST_a", numbers=[TO])
CALL = InviteFacts(called_number=TO, calling_number=FROM, source_ip="203.0.113.7")


def direct(room: str = "room", pin: str = "") -> SIPDispatchRule:
    return SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name=room, pin=pin))


def individual(prefix: str = "call-", pin: str = "") -> SIPDispatchRule:
    return SIPDispatchRule(dispatch_rule_individual=SIPDispatchRuleIndividual(room_prefix=prefix, pin=pin))


def callee(prefix: str = "number-", pin: str = "") -> SIPDispatchRule:
    return SIPDispatchRule(dispatch_rule_callee=SIPDispatchRuleCallee(room_prefix=prefix, pin=pin))


def R(
    rule_id: str,
    rule: SIPDispatchRule,
    trunks: list[str] | None = None,
    inbound: list[str] | None = None,
    numbers: list[str] | None = None,
) -> SIPDispatchRuleInfo:
    return SIPDispatchRuleInfo(
        sip_dispatch_rule_id=rule_id,
        rule=rule,
        trunk_ids=trunks or [],
        inbound_numbers=inbound or [],
        numbers=numbers or [],
    )


# name, trunk, rules, pin, expected verdict, expected rule id
CASES: list[tuple[str, SIPInboundTrunkInfo | None, list[SIPDispatchRuleInfo], str, RuleVerdict, str | None]] = [
    ("no rules", TRUNK, [], "", RuleVerdict.NO_RULE, None),
    ("catch-all, no trunk", None, [R("r1", direct())], "", RuleVerdict.SELECTED, "r1"),
    ("catch-all with trunk", TRUNK, [R("r1", direct())], "", RuleVerdict.SELECTED, "r1"),
    ("trunk-specific", TRUNK, [R("r1", direct(), ["ST_a", "ST_b"])], "", RuleVerdict.SELECTED, "r1"),
    ("other trunk only", TRUNK, [R("r1", direct(), ["ST_z"])], "", RuleVerdict.NO_RULE, None),
    ("trunk-specific rule, trunkless call", None, [R("r1", direct(), ["ST_a"])], "", RuleVerdict.NO_RULE, None),
    (
        "specific beats catch-all",
        TRUNK,
        [R("r1", direct("a")), R("r2", direct("b"), ["ST_a"])],
        "",
        RuleVerdict.SELECTED,
        "r2",
    ),
    (
        "specific open beats catch-all PIN",
        TRUNK,
        [R("r1", direct("a", "123")), R("r2", direct("b"), ["ST_a"])],
        "",
        RuleVerdict.SELECTED,
        "r2",
    ),
    (
        "specific PIN beats catch-all open",
        TRUNK,
        [R("r1", direct("a")), R("r2", direct("b", "123"), ["ST_a"])],
        "",
        RuleVerdict.SELECTED,
        "r2",
    ),
    (
        "specific PIN beats catch-all PIN, same PIN entered",
        TRUNK,
        [R("r1", direct("a", "123")), R("r2", direct("b", "123"), ["ST_a"])],
        "123",
        RuleVerdict.SELECTED,
        "r2",
    ),
    ("PIN rule, PIN entered", TRUNK, [R("r1", direct("a", "123"), ["ST_a"])], "123", RuleVerdict.SELECTED, "r1"),
    ("PIN rule before PIN", TRUNK, [R("r1", direct("a", "123"), ["ST_a"])], "", RuleVerdict.SELECTED, "r1"),
    ("wrong PIN", TRUNK, [R("r1", direct("a", "123"), ["ST_a"])], "999", RuleVerdict.WRONG_PIN, None),
    (
        "wrong PIN does not fall back to an open rule",
        TRUNK,
        [R("r1", direct("a", "123"), ["ST_a"]), R("r2", individual())],
        "999",
        RuleVerdict.WRONG_PIN,
        None,
    ),
    (
        "PIN picks among PIN rules",
        TRUNK,
        [R("r1", direct("a", "123")), R("r2", direct("b", "456"))],
        "456",
        RuleVerdict.SELECTED,
        "r2",
    ),
    (
        "PIN rule outranks open rule before a PIN",
        TRUNK,
        [R("r1", direct("a")), R("r2", direct("b", "123"))],
        "",
        RuleVerdict.SELECTED,
        "r2",
    ),
    (
        "direct before individual",
        TRUNK,
        [R("r1", individual(pin="1")), R("r2", direct("x", "2"))],
        "",
        RuleVerdict.SELECTED,
        "r2",
    ),
    (
        "individual before callee",
        TRUNK,
        [R("r1", callee(pin="1")), R("r2", individual(pin="2"))],
        "",
        RuleVerdict.SELECTED,
        "r2",
    ),
    (
        "caller-specific open beats generic PIN",
        TRUNK,
        [R("r1", direct("a", "123")), R("r2", direct("b"), inbound=[FROM])],
        "",
        RuleVerdict.SELECTED,
        "r2",
    ),
    (
        "number-specific open beats generic PIN",
        TRUNK,
        [R("r1", direct("a", "123")), R("r2", direct("b"), numbers=[TO])],
        "",
        RuleVerdict.SELECTED,
        "r2",
    ),
    ("inbound_numbers without +", TRUNK, [R("r1", direct(), inbound=[FROM[1:]])], "", RuleVerdict.SELECTED, "r1"),
    ("numbers, Telnyx form", TRUNK, [R("r1", direct(), numbers=[TO[1:]])], "", RuleVerdict.SELECTED, "r1"),
    ("caller not listed", TRUNK, [R("r1", direct(), inbound=["+1999"])], "", RuleVerdict.NO_RULE, None),
    ("number not listed", TRUNK, [R("r1", direct(), numbers=["+1999"])], "", RuleVerdict.NO_RULE, None),
    ("open rule skipped once PIN entered", TRUNK, [R("r1", direct())], "123", RuleVerdict.NO_RULE, None),
    ("conflicting catch-alls", TRUNK, [R("r1", direct("a")), R("r2", individual())], "", RuleVerdict.AMBIGUOUS, None),
    (
        "conflict on another trunk is not ours",
        TRUNK,
        [R("r1", direct("a"), ["ST_z"]), R("r2", direct("b"), ["ST_z"]), R("r3", direct("c"))],
        "",
        RuleVerdict.SELECTED,
        "r3",
    ),
]


@pytest.mark.parametrize(("name", "trunk", "rules", "pin", "verdict", "rule_id"), CASES, ids=[c[0] for c in CASES])
def test_select(
    name: str,
    trunk: SIPInboundTrunkInfo | None,
    rules: list[SIPDispatchRuleInfo],
    pin: str,
    verdict: RuleVerdict,
    rule_id: str | None,
) -> None:
    selection = select_dispatch_rule(rules, trunk, CALL, pin)
    assert selection.verdict is verdict, selection.reason
    assert (selection.rule.sip_dispatch_rule_id if selection.rule else None) == rule_id
    if verdict is not RuleVerdict.AMBIGUOUS:
        assert [c.rule_id for c in selection.considered] == [r.sip_dispatch_rule_id for r in rules]
        assert sum(c.eligible for c in selection.considered) == (1 if rule_id else 0)


def test_no_pin_callers_skip_pin_rules() -> None:
    rules = [R("r1", direct("a", "123")), R("r2", direct("b"))]
    assert select_dispatch_rule(rules, TRUNK, CALL).rule == rules[0]
    assert select_dispatch_rule(rules, TRUNK, CALL, no_pin=True).rule == rules[1]
    only_pin = select_dispatch_rule(rules[:1], TRUNK, CALL, no_pin=True)
    assert only_pin.verdict is RuleVerdict.NO_RULE
    assert "cannot enter" in only_pin.considered[0].reasons[0]


def test_priorities() -> None:
    assert rule_priority(R("r", direct(pin="1"), inbound=["+1"], numbers=["+2"])) == 0
    assert rule_priority(R("r", individual(pin="1"), inbound=["+1"], numbers=["+2"])) == 1
    assert rule_priority(R("r", callee(pin="1"), inbound=["+1"], numbers=["+2"])) == 2
    assert rule_priority(R("r", direct(), inbound=["+1"], numbers=["+2"])) == 100
    assert rule_priority(R("r", callee())) == 2102


def test_reasons_explain_losers() -> None:
    rules = [R("r1", direct("a")), R("r2", direct("b"), ["ST_a"]), R("r3", direct("c"), ["ST_z"])]
    reasons = {c.rule_id: c.reasons[0] for c in select_dispatch_rule(rules, TRUNK, CALL).considered}
    assert "trunk-specific rule 'r2' comes first" in reasons["r1"]
    assert reasons["r2"] == "selected"
    assert "limited to trunks ['ST_z']" in reasons["r3"]


trunk_ids = st.lists(st.sampled_from(["ST_b", "ST_c", "ST_d"]), min_size=1, max_size=3)


@given(
    others=trunk_ids,
    pin=st.sampled_from(["", "123"]),
    entered=st.sampled_from(["", "123", "999"]),
    inbound=st.lists(st.sampled_from([FROM, FROM[1:], "+1999"]), max_size=2),
)
def test_rule_for_other_trunks_never_matches(others: list[str], pin: str, entered: str, inbound: list[str]) -> None:
    rule = R("r1", direct("a", pin), others, inbound)
    for trunk in (TRUNK, None):
        selection = select_dispatch_rule([rule], trunk, CALL, entered)
        assert selection.rule is None
        assert selection.verdict is RuleVerdict.NO_RULE
