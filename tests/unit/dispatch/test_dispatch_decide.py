"""The whole decision, and the deliberate difference from LiveKit OSS: no trunk admits → 404."""

from __future__ import annotations

import pytest
from livekit.protocol.sip import (
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleIndividual,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
    SIPMediaConfig,
    SIPMediaEncryption,
)

from dispatch.call import InviteFacts
from dispatch.decide import Verdict, decide, is_open_configuration

TO = "+15105550100"
FROM = "+13105550100"
CALL = InviteFacts(called_number=TO, calling_number=FROM, source_ip="203.0.113.7", lk_call_id="SCL_1")
CATCH_ALL = SIPDispatchRuleInfo(
    sip_dispatch_rule_id="SDR_all",
    rule=SIPDispatchRule(dispatch_rule_individual=SIPDispatchRuleIndividual(room_prefix="call-")),
)
PIN_RULE = SIPDispatchRuleInfo(
    sip_dispatch_rule_id="SDR_pin",
    rule=SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name="secret", pin="1234")),
    media=SIPMediaConfig(encryption=SIPMediaEncryption.SIP_MEDIA_ENCRYPT_ALLOW),
)
RESTRICTED = SIPInboundTrunkInfo(sip_trunk_id="ST_r", numbers=[TO], allowed_addresses=["198.51.100.0/24"])
OPEN_TRUNK = SIPInboundTrunkInfo(sip_trunk_id="ST_o", numbers=[TO])
AUTH_TRUNK = SIPInboundTrunkInfo(sip_trunk_id="ST_u", numbers=[TO], auth_username="u", auth_password="p")


def test_no_trunk_admits_means_404_even_with_a_catch_all_rule() -> None:
    decision = decide([RESTRICTED], [CATCH_ALL], CALL)
    assert decision.verdict is Verdict.NO_TRUNK and decision.sip_status == 404
    assert decision.rule_selection is None and decision.dispatch is None


def test_without_any_trunk_catch_all_rules_take_the_call() -> None:
    decision = decide([], [CATCH_ALL], CALL, new_suffix=lambda: "X")
    assert decision.verdict is Verdict.ACCEPT
    assert decision.dispatch is not None and decision.dispatch.room_name == f"call-_{FROM}_X"
    assert decision.trunk is None and decision.rule is CATCH_ALL


def test_admitted_call_reaches_catch_all_rule() -> None:
    decision = decide([OPEN_TRUNK], [CATCH_ALL], CALL)
    assert decision.verdict is Verdict.ACCEPT and decision.sip_status == 200
    assert decision.dispatch is not None and decision.dispatch.trunk_id == "ST_o"


def test_auth_is_asked_before_rules() -> None:
    decision = decide([AUTH_TRUNK], [CATCH_ALL], CALL)
    assert decision.verdict is Verdict.AUTH_REQUIRED and decision.sip_status == 401
    assert decision.credentials is not None and decision.credentials.username == "u"
    with_credentials = InviteFacts(called_number=TO, calling_number=FROM, source_ip="", auth_username="u")
    accepted = decide([AUTH_TRUNK], [CATCH_ALL], with_credentials)
    assert accepted.verdict is Verdict.ACCEPT and accepted.credentials is not None


def test_pin_round_trip() -> None:
    asked = decide([OPEN_TRUNK], [PIN_RULE], CALL)
    assert asked.verdict is Verdict.REQUEST_PIN and asked.dispatch is None
    assert asked.media is not None and asked.media.encryption == SIPMediaEncryption.SIP_MEDIA_ENCRYPT_ALLOW
    entered = decide([OPEN_TRUNK], [PIN_RULE], CALL, pin="1234", answered=True)
    assert entered.verdict is Verdict.ACCEPT and entered.dispatch is not None
    assert entered.dispatch.room_name == "secret"
    assert entered.dispatch.participant_attributes["sip.callStatus"] == "active"
    wrong = decide([OPEN_TRUNK], [PIN_RULE], CALL, pin="0000")
    assert wrong.verdict is Verdict.WRONG_PIN and wrong.sip_status == 403


@pytest.mark.parametrize(
    ("trunks", "rules", "verdict"),
    [
        ([OPEN_TRUNK], [], Verdict.NO_RULE),
        ([OPEN_TRUNK, SIPInboundTrunkInfo(sip_trunk_id="ST_x", numbers=[TO])], [CATCH_ALL], Verdict.CONFLICT),
        (
            [OPEN_TRUNK],
            [CATCH_ALL, SIPDispatchRuleInfo(sip_dispatch_rule_id="b", rule=CATCH_ALL.rule)],
            Verdict.CONFLICT,
        ),
    ],
)
def test_refusals(trunks: list[SIPInboundTrunkInfo], rules: list[SIPDispatchRuleInfo], verdict: Verdict) -> None:
    assert decide(trunks, rules, CALL).verdict is verdict


def test_open_configuration() -> None:
    assert is_open_configuration([], [CATCH_ALL])
    assert not is_open_configuration([], [])
    assert not is_open_configuration([OPEN_TRUNK], [CATCH_ALL])
    specific = SIPDispatchRuleInfo(sip_dispatch_rule_id="s", rule=CATCH_ALL.rule, trunk_ids=["ST_o"])
    assert not is_open_configuration([], [specific])
