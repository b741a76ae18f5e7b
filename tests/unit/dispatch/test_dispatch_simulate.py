"""The simulator's report: every trunk and rule passed over is explained; JSON mirrors the text."""

from __future__ import annotations

import json

from livekit.protocol.sip import (
    SIPDispatchRule,
    SIPDispatchRuleCallee,
    SIPDispatchRuleDirect,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
)

from dispatch.simulate import simulate

TO = "+15105550100"
FROM = "+13105550100"
TRUNK = SIPInboundTrunkInfo(sip_trunk_id="ST_a", name="main", numbers=[TO])
PIN_RULE = SIPDispatchRuleInfo(
    sip_dispatch_rule_id="SDR_pin",
    name="pin",
    rule=SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name="secret", pin="1234")),
)
OTHER_TRUNK_RULE = SIPDispatchRuleInfo(
    sip_dispatch_rule_id="SDR_other",
    rule=SIPDispatchRule(dispatch_rule_callee=SIPDispatchRuleCallee(room_prefix="n")),
    trunk_ids=["ST_z"],
)


def test_wrong_pin_report_explains_every_rule() -> None:
    report = simulate([TRUNK], [PIN_RULE, OTHER_TRUNK_RULE], TO, FROM, "203.0.113.7", pin="0000")
    assert not report.accepted and report.pin_requested
    text = report.to_text()
    assert "verdict: wrong_pin (SIP 403)" in text
    assert "SDR_pin (pin): the PIN entered is not this rule's PIN" in text
    assert "SDR_other (no name): limited to trunks ['ST_z']; the call came through trunk 'ST_a'" in text
    assert "ST_a (main): admitted" in text


def test_no_rules_and_open_configuration() -> None:
    report = simulate([], [], TO, FROM, "203.0.113.7")
    assert "(no dispatch rules configured)" in report.to_text()
    assert "(no inbound trunks configured)" in report.to_text()
    assert not report.open_configuration
    catch_all = SIPDispatchRuleInfo(sip_dispatch_rule_id="SDR_all", rule=OTHER_TRUNK_RULE.rule)
    open_report = simulate([], [catch_all], TO, FROM, "203.0.113.7")
    assert open_report.accepted and open_report.open_configuration
    assert "warning: no inbound trunk is configured" in open_report.to_text()
    assert "trunk: none configured (trunkless call)" in open_report.to_text()


def test_pin_requested_without_pin() -> None:
    report = simulate([TRUNK], [PIN_RULE], TO, FROM, "203.0.113.7")
    data = json.loads(report.to_json())
    assert data["verdict"] == "request_pin" and data["room"] is None and data["rule"]["id"] == "SDR_pin"
    assert "PIN: requested" in report.to_text()
