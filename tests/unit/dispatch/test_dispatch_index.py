"""The indexes give the decisions and conflict verdicts of a full scan, whatever the configuration.

Random configurations (numbers in several written forms, address filters with IPs, networks and host names,
catch-all trunks and rules, PINs) and random calls: `decide` over the indexes must answer exactly what it answers
over the plain lists, and the pairwise conflict check must agree with the definition by key products.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
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
from dispatch.decide import decide
from dispatch.errors import ConflictError
from dispatch.index import RuleIndex, TrunkIndex, number_keys, rule_keys
from dispatch.validate import check_dispatch_rule_conflicts, check_inbound_trunk_conflicts

NUMBERS = ["+15105550100", "15105550100", "(510) 555-0101", "+15105550102", "alice", "+44 20 7946 0000"]
ADDRESSES = ["192.0.2.1", "192.0.2.0/28", "198.51.100.0/24", "2001:db8::/32", "pbx.example.com", "203.0.113.9"]
SOURCES = ["192.0.2.1", "192.0.2.5", "198.51.100.77", "2001:db8::5", "203.0.113.9", "10.0.0.1"]

trunk_fields = st.fixed_dictionaries(
    {
        "numbers": st.lists(st.sampled_from(NUMBERS), max_size=2, unique=True),
        "allowed_numbers": st.lists(st.sampled_from(NUMBERS), max_size=2, unique=True),
        "allowed_addresses": st.lists(st.sampled_from(ADDRESSES), max_size=2, unique=True),
        "auth_username": st.sampled_from(["", "user"]),
    }
)


def rule_strategy(trunk_count: int) -> st.SearchStrategy[SIPDispatchRuleInfo]:
    kinds = st.sampled_from(
        [
            lambda pin: SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name="r", pin=pin)),
            lambda pin: SIPDispatchRule(dispatch_rule_individual=SIPDispatchRuleIndividual(room_prefix="c", pin=pin)),
            lambda pin: SIPDispatchRule(dispatch_rule_callee=SIPDispatchRuleCallee(room_prefix="t", pin=pin)),
        ]
    )
    return st.builds(
        lambda kind, pin, trunks, numbers, inbound: SIPDispatchRuleInfo(
            rule=kind(pin), trunk_ids=[f"ST_{i}" for i in trunks], numbers=numbers, inbound_numbers=inbound
        ),
        kinds,
        st.sampled_from(["", "", "1234"]),
        st.lists(st.integers(0, max(0, trunk_count - 1)), max_size=2, unique=True) if trunk_count else st.just([]),
        st.lists(st.sampled_from(NUMBERS), max_size=2, unique=True),
        st.lists(st.sampled_from(NUMBERS), max_size=1, unique=True),
    )


def without_conflicts(trunks: list[SIPInboundTrunkInfo], rules: list[SIPDispatchRuleInfo]) -> tuple[list, list]:  # type: ignore[type-arg]
    """Keep the records the API would have accepted, in order (it refuses one that conflicts with those before)."""
    kept_trunks: list[SIPInboundTrunkInfo] = []
    for trunk in trunks:
        try:
            check_inbound_trunk_conflicts([*kept_trunks, trunk])
        except ConflictError:
            continue
        kept_trunks.append(trunk)
    kept_rules: list[SIPDispatchRuleInfo] = []
    for rule in rules:
        try:
            check_dispatch_rule_conflicts([*kept_rules, rule])
        except ConflictError:
            continue
        kept_rules.append(rule)
    return kept_trunks, kept_rules


@settings(max_examples=300, deadline=None)
@given(
    st.lists(trunk_fields, max_size=8),
    st.data(),
    st.lists(
        st.tuples(
            st.sampled_from([*NUMBERS, ""]),
            st.sampled_from(NUMBERS),
            st.sampled_from(SOURCES),
            st.sampled_from(["", "pbx.example.com", "PBX.example.com", "192.0.2.1"]),
            st.sampled_from([None, "user", "other"]),
            st.sampled_from(["", "1234", "9"]),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_decisions_over_the_indexes_equal_those_over_the_lists(
    fields: list[dict[str, object]], data: st.DataObject, calls: list[tuple[str, str, str, str, str | None, str]]
) -> None:
    trunks = [SIPInboundTrunkInfo(sip_trunk_id=f"ST_{i}", **f) for i, f in enumerate(fields)]  # type: ignore[arg-type]
    rules = data.draw(st.lists(rule_strategy(len(trunks)), max_size=8))
    for i, rule in enumerate(rules):
        rule.sip_dispatch_rule_id = f"SDR_{i}"
    trunks, rules = without_conflicts(trunks, rules)
    trunk_index, rule_index = TrunkIndex(trunks), RuleIndex(rules)
    for called, calling, source, from_host, auth, pin in calls:
        call = InviteFacts(called, calling, source, from_host=from_host, auth_username=auth)
        scanned = decide(trunks, rules, call, pin=pin, new_suffix=lambda: "x")
        indexed = decide(trunk_index, rule_index, call, pin=pin, new_suffix=lambda: "x")
        assert (indexed.verdict, indexed.trunk, indexed.rule, indexed.dispatch) == (
            scanned.verdict,
            scanned.trunk,
            scanned.rule,
            scanned.dispatch,
        ), (call, scanned.reason, indexed.reason)


def _product_conflict(a: SIPInboundTrunkInfo, b: SIPInboundTrunkInfo) -> bool:
    pairs = set(itertools.product(number_keys(a.numbers), number_keys(a.allowed_numbers)))
    return bool(pairs & set(itertools.product(number_keys(b.numbers), number_keys(b.allowed_numbers))))


@settings(max_examples=300, deadline=None)
@given(trunk_fields, trunk_fields)
def test_trunk_conflicts_are_the_key_product_definition(a: dict[str, object], b: dict[str, object]) -> None:
    first = SIPInboundTrunkInfo(sip_trunk_id="ST_a", **a)  # type: ignore[arg-type]
    second = SIPInboundTrunkInfo(sip_trunk_id="ST_b", **b)  # type: ignore[arg-type]
    assert (TrunkIndex([first]).conflict(second) is not None) == _product_conflict(first, second)


@settings(max_examples=300, deadline=None)
@given(rule_strategy(3), rule_strategy(3))
def test_rule_conflicts_are_the_key_product_definition(a: SIPDispatchRuleInfo, b: SIPDispatchRuleInfo) -> None:
    a.sip_dispatch_rule_id, b.sip_dispatch_rule_id = "SDR_a", "SDR_b"
    pin_a, *keys_a = rule_keys(a)
    pin_b, *keys_b = rule_keys(b)
    product = pin_a == pin_b and bool(set(itertools.product(*keys_a)) & set(itertools.product(*keys_b)))
    assert (RuleIndex([a]).conflict(b) is not None) == product


def test_removing_and_replacing_records_keeps_the_index_exact() -> None:
    index = TrunkIndex()
    index.put(SIPInboundTrunkInfo(sip_trunk_id="ST_1", numbers=["+15105550100"]))
    index.put(SIPInboundTrunkInfo(sip_trunk_id="ST_2", allowed_addresses=["192.0.2.0/24"]))
    call = InviteFacts("+15105550100", "+1", "192.0.2.9")
    assert [t.sip_trunk_id for t in index.candidates(call)] == ["ST_1", "ST_2"]
    index.put(SIPInboundTrunkInfo(sip_trunk_id="ST_1", numbers=["+15105550199"]))  # an update
    index.remove("ST_2")
    assert index.candidates(call) == [] and len(index) == 1
    assert index.candidates(InviteFacts("15105550199", "+1", "10.0.0.1"))[0].sip_trunk_id == "ST_1"
