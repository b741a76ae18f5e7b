"""The whole inbound decision: trunk, then dispatch rule, then room and participant.

One deliberate difference from LiveKit's open-source server (see docs/dispatch.md): there, a call no
trunk admits still falls through to catch-all dispatch rules, so ``allowed_addresses`` and
``allowed_numbers`` protect nothing once a catch-all rule exists. Here, when inbound trunks exist and
none admits the call, it is rejected with 404, as LiveKit's hosted service does. Only when no inbound
trunk exists at all may catch-all rules take trunkless calls; :func:`is_open_configuration` tells the
service to warn about that at start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from livekit.protocol.sip import SIPDispatchRuleInfo, SIPInboundTrunkInfo, SIPMediaConfig

from dispatch.call import InviteFacts
from dispatch.evaluate import CallDispatch, evaluate_dispatch_rule, merged_media, random_suffix
from dispatch.index import RuleIndex, TrunkIndex
from dispatch.rule_kinds import rule_pin
from dispatch.rules import RuleSelection, RuleVerdict, select_dispatch_rule
from dispatch.trunks import TrunkCredentials, TrunkMatch, TrunkVerdict, match_trunk


class Verdict(StrEnum):
    ACCEPT = "accept"
    """Join ``dispatch.room_name`` as ``dispatch.participant_identity``."""
    REQUEST_PIN = "request_pin"
    """Answer the call (with ``media``), collect a PIN, then decide again with it."""
    AUTH_REQUIRED = "auth_required"
    AUTH_FAILED = "auth_failed"
    NO_TRUNK = "no_trunk"
    NO_RULE = "no_rule"
    WRONG_PIN = "wrong_pin"
    CONFLICT = "conflict"
    """Two trunks or two rules claim the call equally: a configuration error."""


SIP_STATUS = {
    Verdict.ACCEPT: 200,
    Verdict.REQUEST_PIN: 200,
    Verdict.AUTH_REQUIRED: 401,
    Verdict.AUTH_FAILED: 403,
    Verdict.NO_TRUNK: 404,
    Verdict.NO_RULE: 404,
    Verdict.WRONG_PIN: 403,
    Verdict.CONFLICT: 503,
}

_TRUNK_REFUSALS = {
    TrunkVerdict.AUTH_REQUIRED: Verdict.AUTH_REQUIRED,
    TrunkVerdict.AUTH_FAILED: Verdict.AUTH_FAILED,
    TrunkVerdict.NO_TRUNK: Verdict.NO_TRUNK,
    TrunkVerdict.AMBIGUOUS: Verdict.CONFLICT,
}
_RULE_REFUSALS = {
    RuleVerdict.NO_RULE: Verdict.NO_RULE,
    RuleVerdict.WRONG_PIN: Verdict.WRONG_PIN,
    RuleVerdict.AMBIGUOUS: Verdict.CONFLICT,
}


@dataclass(frozen=True)
class Decision:
    """What to do with an inbound call, and how the decision was reached.

    When ``credentials`` is set, the INVITE's digest response must be verified against them before an
    ACCEPT or REQUEST_PIN is acted on (AUTH_REQUIRED: challenge with them).
    """

    verdict: Verdict
    reason: str
    trunk_match: TrunkMatch
    rule_selection: RuleSelection | None = None
    dispatch: CallDispatch | None = None
    media: SIPMediaConfig | None = None

    @property
    def sip_status(self) -> int:
        return SIP_STATUS[self.verdict]

    @property
    def trunk(self) -> SIPInboundTrunkInfo | None:
        return self.trunk_match.trunk

    @property
    def rule(self) -> SIPDispatchRuleInfo | None:
        return self.rule_selection.rule if self.rule_selection is not None else None

    @property
    def credentials(self) -> TrunkCredentials | None:
        return self.trunk_match.credentials


def decide(
    trunks: Sequence[SIPInboundTrunkInfo] | TrunkIndex,
    rules: Sequence[SIPDispatchRuleInfo] | RuleIndex,
    call: InviteFacts,
    pin: str = "",
    no_pin: bool = False,
    answered: bool = False,
    new_suffix: Callable[[], str] = random_suffix,
) -> Decision:
    """Decide what happens to ``call`` given every inbound trunk and dispatch rule (or their indexes, which
    give the same decision touching only the records that concern the call).

    ``pin`` is the PIN the caller entered (after a REQUEST_PIN), ``no_pin`` says the caller cannot
    enter one, ``answered`` that the call was already answered to prompt for it.
    """
    trunk_match = match_trunk(trunks, call)
    refusal = _TRUNK_REFUSALS.get(trunk_match.verdict)
    if refusal is not None:
        return Decision(refusal, trunk_match.reason, trunk_match)
    selection = select_dispatch_rule(rules, trunk_match.trunk, call, pin, no_pin)
    rule_refusal = _RULE_REFUSALS.get(selection.verdict)
    if rule_refusal is not None or selection.rule is None:
        return Decision(rule_refusal or Verdict.NO_RULE, selection.reason, trunk_match, selection)
    rule = selection.rule
    if rule_pin(rule) and not pin:
        return Decision(
            Verdict.REQUEST_PIN,
            f"rule {rule.sip_dispatch_rule_id!r} asks for a PIN",
            trunk_match,
            selection,
            media=merged_media(trunk_match.trunk, rule),
        )
    dispatch = evaluate_dispatch_rule(trunk_match.trunk, rule, call, answered, new_suffix)
    return Decision(Verdict.ACCEPT, f"room {dispatch.room_name!r}", trunk_match, selection, dispatch, dispatch.media)


def is_open_configuration(trunks: Sequence[SIPInboundTrunkInfo], rules: Sequence[SIPDispatchRuleInfo]) -> bool:
    """Whether calls from anyone, anywhere, reach a room: no inbound trunk exists and a catch-all rule does."""
    return not trunks and any(not rule.trunk_ids for rule in rules)


OPEN_CONFIGURATION_WARNING = (
    "no inbound trunk is configured and a catch-all dispatch rule exists: any caller from any address "
    "will be put into a room; create an inbound trunk (numbers, allowed_addresses or auth) to close this"
)
