"""The three kinds of dispatch rule, seen through what they share: a PIN and a room name or prefix."""

from __future__ import annotations

from livekit.protocol.sip import SIPDispatchRuleInfo

from dispatch.errors import ValidationError

DIRECT = "dispatch_rule_direct"
INDIVIDUAL = "dispatch_rule_individual"
CALLEE = "dispatch_rule_callee"

_API_NAMES = {
    DIRECT: "dispatchRuleDirect",
    INDIVIDUAL: "dispatchRuleIndividual",
    CALLEE: "dispatchRuleCallee",
}


def rule_kind(rule: SIPDispatchRuleInfo) -> str:
    """Which oneof of ``rule.rule`` is set (DIRECT, INDIVIDUAL or CALLEE)."""
    kind: str | None = rule.rule.WhichOneof("rule")
    if kind is None:
        raise ValidationError(
            f"dispatch_rule.rule: dispatch rule {rule.sip_dispatch_rule_id or '<new>'!r} has no rule "
            "(one of dispatchRuleDirect, dispatchRuleIndividual, dispatchRuleCallee)"
        )
    return kind


def kind_api_name(kind: str) -> str:
    """The name the LiveKit API and docs use for a rule kind (``dispatchRuleDirect``, ...)."""
    return _API_NAMES[kind]


def rule_pin(rule: SIPDispatchRuleInfo) -> str:
    """The PIN a caller must enter for this rule, or "" for an open rule."""
    kind = rule_kind(rule)
    pin: str = getattr(rule.rule, kind).pin
    return pin


def rule_room(rule: SIPDispatchRuleInfo) -> str:
    """The room name (direct) or room prefix (individual, callee) of this rule."""
    kind = rule_kind(rule)
    if kind == DIRECT:
        return rule.rule.dispatch_rule_direct.room_name
    prefix: str = getattr(rule.rule, kind).room_prefix
    return prefix
