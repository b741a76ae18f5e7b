"""Which dispatch rule takes a call once its trunk is known.

A rule applies to a trunk when its ``trunk_ids`` list the trunk or is empty (a catch-all rule); it
applies to the call when the caller is in ``inbound_numbers`` and the called number in ``numbers``
(an empty list accepts any), numbers compared normalised. Like livekit-server:

* a rule naming the trunk always beats a catch-all rule;
* within each group the lowest :func:`rule_priority` wins: PIN-protected before open, direct before
  individual before callee, and each of ``inbound_numbers`` / ``numbers`` left empty costs 1000;
* before a PIN is entered every rule competes, so a PIN rule that wins is answered with a PIN request;
  once a PIN is entered only rules with exactly that PIN compete (never open ones), and when some
  rule would have taken the call but for its PIN, the verdict is "wrong PIN";
* when the caller cannot enter a PIN (``no_pin``), PIN rules are passed over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from livekit.protocol.sip import SIPDispatchRuleInfo, SIPInboundTrunkInfo

from dispatch.call import InviteFacts
from dispatch.errors import DispatchError
from dispatch.index import RuleIndex
from dispatch.numbers import number_in
from dispatch.rule_kinds import CALLEE, DIRECT, INDIVIDUAL, rule_kind, rule_pin, rule_room
from dispatch.validate import check_dispatch_rule_conflicts

_KIND_RANK = {DIRECT: 0, INDIVIDUAL: 1, CALLEE: 2}
OPEN_RULE_PENALTY = 100
ANY_NUMBER_PENALTY = 1000


def rule_priority(rule: SIPDispatchRuleInfo) -> int:
    """LiveKit's priority of a rule within its group; lower wins."""
    priority = _KIND_RANK[rule_kind(rule)]
    if not rule_pin(rule):
        priority += OPEN_RULE_PENALTY
    if not rule.inbound_numbers:
        priority += ANY_NUMBER_PENALTY
    if not rule.numbers:
        priority += ANY_NUMBER_PENALTY
    return priority


def _order(rule: SIPDispatchRuleInfo) -> tuple[int, str, str]:
    """Priority, then room name or prefix (as LiveKit breaks ties), then ID, so the choice is stable."""
    return rule_priority(rule), rule_room(rule), rule.sip_dispatch_rule_id


class RuleVerdict(StrEnum):
    SELECTED = "selected"
    NO_RULE = "no_rule"
    WRONG_PIN = "wrong_pin"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class RuleConsideration:
    """How one dispatch rule fared against the call, for the simulator and for logs."""

    rule_id: str
    name: str
    eligible: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class RuleSelection:
    verdict: RuleVerdict
    rule: SIPDispatchRuleInfo | None
    reason: str
    considered: tuple[RuleConsideration, ...]


def applies_to_trunk(rule: SIPDispatchRuleInfo, trunk: SIPInboundTrunkInfo | None) -> bool:
    """Whether ``rule`` may take calls that came through ``trunk`` (None: through no trunk)."""
    if not rule.trunk_ids:
        return True
    return trunk is not None and trunk.sip_trunk_id in rule.trunk_ids


def _filter_reason(
    rule: SIPDispatchRuleInfo, trunk: SIPInboundTrunkInfo | None, call: InviteFacts, pin: str, no_pin: bool
) -> tuple[str | None, bool]:
    """Why ``rule`` cannot take the call (None if it can), and whether only its PIN stood in the way."""
    if not applies_to_trunk(rule, trunk):
        via = f"trunk {trunk.sip_trunk_id!r}" if trunk is not None else "no trunk"
        return f"limited to trunks {list(rule.trunk_ids)}; the call came through {via}", False
    if rule.inbound_numbers and not number_in(call.calling_number, rule.inbound_numbers):
        return f"caller {call.calling_number!r} is not in inbound_numbers {list(rule.inbound_numbers)}", False
    if rule.numbers and not number_in(call.called_number, rule.numbers):
        return f"called number {call.called_number!r} is not in numbers {list(rule.numbers)}", False
    rule_secret = rule_pin(rule)
    if no_pin and rule_secret:
        return "needs a PIN and the caller cannot enter one", False
    if pin and not rule_secret:
        return "open rule, passed over because a PIN was entered", False
    if pin and pin != rule_secret:
        return "the PIN entered is not this rule's PIN", True
    return None, False


def select_dispatch_rule(
    rules: Sequence[SIPDispatchRuleInfo] | RuleIndex,
    trunk: SIPInboundTrunkInfo | None,
    call: InviteFacts,
    pin: str = "",
    no_pin: bool = False,
) -> RuleSelection:
    """Pick the dispatch rule for a call that came through ``trunk`` (None when no trunk exists).

    Given a `RuleIndex`, only its candidates for the trunk and call are considered (the call path); given a
    list, every rule is, so the simulator can say why each one was passed over."""
    configured = len(rules) > 0
    rules = rules.candidates(trunk, call) if isinstance(rules, RuleIndex) else rules
    candidates = [rule for rule in rules if applies_to_trunk(rule, trunk)]
    try:
        check_dispatch_rule_conflicts(candidates)
    except DispatchError as conflict:
        return RuleSelection(RuleVerdict.AMBIGUOUS, None, conflict.message, ())

    eligible: list[SIPDispatchRuleInfo] = []
    reasons: dict[int, str] = {}
    wrong_pin = False
    for index, rule in enumerate(rules):
        reason, pin_only = _filter_reason(rule, trunk, call, pin, no_pin)
        wrong_pin = wrong_pin or pin_only
        if reason is None:
            eligible.append(rule)
        else:
            reasons[index] = reason

    specific = [rule for rule in eligible if rule.trunk_ids]
    group = specific or eligible
    chosen = min(group, key=_order) if group else None
    for index, rule in enumerate(rules):
        if index in reasons or rule is chosen or chosen is None:
            continue
        if chosen.trunk_ids and not rule.trunk_ids:
            reasons[index] = f"catch-all rule; the trunk-specific rule {chosen.sip_dispatch_rule_id!r} comes first"
        else:
            reasons[index] = (
                f"priority {rule_priority(rule)} loses to {chosen.sip_dispatch_rule_id!r} "
                f"(priority {rule_priority(chosen)})"
            )
    considered = tuple(
        RuleConsideration(
            rule.sip_dispatch_rule_id,
            rule.name,
            rule is chosen,
            (reasons[index],) if index in reasons else ("selected",),
        )
        for index, rule in enumerate(rules)
    )
    if chosen is not None:
        return RuleSelection(RuleVerdict.SELECTED, chosen, f"rule {chosen.sip_dispatch_rule_id!r}", considered)
    if wrong_pin:
        return RuleSelection(RuleVerdict.WRONG_PIN, None, "wrong PIN", considered)
    what = "no dispatch rule matched" if configured else "no dispatch rules are configured"
    return RuleSelection(RuleVerdict.NO_RULE, None, f"{what} for the call to {call.called_number!r}", considered)
