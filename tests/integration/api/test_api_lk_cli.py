"""The docs' trunk and dispatch-rule examples, fed to the real `lk` CLI against the bridge, on both stores."""

from __future__ import annotations

from typing import Any

import pytest
from harness import docs_examples as docs
from harness.bridge import BridgeProcess
from harness.lk import LkRunner
from harness.sipapi import created_id, listed
from livekit.protocol.sip import (
    ListSIPDispatchRuleResponse,
    ListSIPInboundTrunkResponse,
    ListSIPOutboundTrunkResponse,
    SIPTransport,
)

pytestmark = pytest.mark.integration


def inbound(lk: LkRunner, bridge: BridgeProcess) -> list[object]:
    return listed(lk("sip", "inbound", "list", "--json", target=bridge).stdout, ListSIPInboundTrunkResponse)


def test_inbound_trunk_examples(lk: LkRunner, bridge: BridgeProcess) -> None:
    out = lk("sip", "inbound", "create", "inbound-trunk.json", target=bridge,
             input_files={"inbound-trunk.json": docs.INBOUND_TRUNK})  # fmt: skip
    krisp_id = created_id(out.stdout)
    out = lk("sip", "inbound", "create", "inbound-trunk.json", target=bridge,
             input_files={"inbound-trunk.json": docs.INBOUND_TRUNK_ALLOWED_NUMBERS})  # fmt: skip
    callers_id = created_id(out.stdout)

    trunks = {t.sip_trunk_id: t for t in inbound(lk, bridge)}
    assert set(trunks) == {krisp_id, callers_id}
    assert trunks[krisp_id].krisp_enabled and list(trunks[krisp_id].numbers) == ["+15105550100"]
    assert list(trunks[callers_id].allowed_numbers) == ["+13105550100", "+17145550100"]

    # The table form shows the same trunks.
    table = lk("sip", "inbound", "list", target=bridge).stdout
    assert krisp_id in table and "+13105550100" in table

    # `update --id` with a JSON file replaces the trunk.
    lk("sip", "inbound", "update", "--id", krisp_id, "inbound-trunk.json", target=bridge,
       input_files={"inbound-trunk.json": docs.INBOUND_TRUNK_UPDATE})  # fmt: skip
    # Flags update single fields.
    lk("sip", "inbound", "update", "--id", callers_id, "--name", "Renamed", "--auth-user", "u", "--auth-pass", "p",
       target=bridge)  # fmt: skip
    trunks = {t.sip_trunk_id: t for t in inbound(lk, bridge)}
    assert trunks[krisp_id].name == "My trunk" and not trunks[krisp_id].krisp_enabled
    assert (trunks[callers_id].name, trunks[callers_id].auth_username) == ("Renamed", "u")
    assert list(trunks[callers_id].allowed_numbers) == ["+13105550100", "+17145550100"]

    lk("sip", "inbound", "delete", krisp_id, target=bridge)
    assert [t.sip_trunk_id for t in inbound(lk, bridge)] == [callers_id]


def test_conflicting_trunk_is_refused_with_the_reason(lk: LkRunner, bridge: BridgeProcess) -> None:
    first = created_id(lk("sip", "inbound", "create", "t.json", target=bridge,
                          input_files={"t.json": docs.INBOUND_TRUNK}).stdout)  # fmt: skip
    result = lk("sip", "inbound", "create", "t.json", target=bridge, check=False,
                input_files={"t.json": docs.INBOUND_TRUNK})  # fmt: skip
    assert result.returncode != 0
    assert "invalid_argument" in result.stderr + result.stdout
    assert first in result.stderr + result.stdout
    assert len(inbound(lk, bridge)) == 1


def test_outbound_trunk_examples(lk: LkRunner, bridge: BridgeProcess) -> None:
    twilio = created_id(lk("sip", "outbound", "create", "outbound-trunk.json", target=bridge,
                           input_files={"outbound-trunk.json": docs.OUTBOUND_TRUNK_TWILIO}).stdout)  # fmt: skip
    anyone = created_id(lk("sip", "outbound", "create", "outbound-trunk.json", target=bridge,
                           input_files={"outbound-trunk.json": docs.OUTBOUND_TRUNK_ANY_NUMBER}).stdout)  # fmt: skip
    lk("sip", "outbound", "update", "--id", twilio, "outbound-trunk.json", target=bridge,
       input_files={"outbound-trunk.json": docs.OUTBOUND_TRUNK_UPDATE})  # fmt: skip
    lk("sip", "outbound", "update", "--id", anyone, "--transport", "tcp", target=bridge)

    out = lk("sip", "outbound", "list", "--json", target=bridge).stdout
    trunks = {t.sip_trunk_id: t for t in listed(out, ListSIPOutboundTrunkResponse)}
    assert (trunks[twilio].name, trunks[twilio].address) == ("My updated outbound trunk", "sip.telnyx.com")
    assert list(trunks[anyone].numbers) == ["*"] and trunks[anyone].auth_username == "user"
    assert trunks[anyone].transport == SIPTransport.SIP_TRANSPORT_TCP

    lk("sip", "outbound", "delete", twilio, target=bridge)
    out = lk("sip", "outbound", "list", "--json", target=bridge).stdout
    assert [t.sip_trunk_id for t in listed(out, ListSIPOutboundTrunkResponse)] == [anyone]


def dig(message: Any, path: str) -> Any:
    """``dig(rule, "room_config.agents.0.agent_name")``: a field deep inside a protobuf message."""
    for part in path.split("."):
        if part.isdigit():
            message = message[int(part)]
        elif hasattr(message, "DESCRIPTOR"):
            message = getattr(message, part)
        else:  # a map field
            message = message[part]
    return message


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        (docs.DISPATCH_INDIVIDUAL_AGENT, {
            "rule.dispatch_rule_individual.room_prefix": "call-",
            "room_config.agents.0.agent_name": "inbound-agent",
            "room_config.agents.0.metadata": "job dispatch metadata",
        }),
        (docs.DISPATCH_DIRECT, {"rule.dispatch_rule_direct.room_name": "open-room"}),
        (docs.DISPATCH_DIRECT_PIN, {
            "rule.dispatch_rule_direct.room_name": "safe-room",
            "rule.dispatch_rule_direct.pin": "12345",
        }),
        (docs.DISPATCH_CALLEE, {
            "rule.dispatch_rule_callee.room_prefix": "number-",
            "rule.dispatch_rule_callee.randomize": False,
        }),
        (docs.DISPATCH_ATTRIBUTES, {"attributes.<key_name1>": "<value1>", "attributes.<key_name2>": "<value2>"}),
        (docs.DISPATCH_METADATA, {"metadata": '{"is_internal": true}'}),
    ],
    ids=["individual-agent", "direct", "direct-pin", "callee", "attributes", "metadata"],
)  # fmt: skip
def test_dispatch_rule_examples(lk: LkRunner, bridge: BridgeProcess, example: str, expected: dict[str, Any]) -> None:
    rule_id = created_id(lk("sip", "dispatch", "create", "dispatch-rule.json", target=bridge,
                            input_files={"dispatch-rule.json": example}).stdout)  # fmt: skip
    rules = listed(lk("sip", "dispatch", "list", "--json", target=bridge).stdout, ListSIPDispatchRuleResponse)
    assert [r.sip_dispatch_rule_id for r in rules] == [rule_id]
    assert rules[0].name == "My dispatch rule"
    assert {path: dig(rules[0], path) for path in expected} == expected
    lk("sip", "dispatch", "delete", rule_id, target=bridge)
    assert listed(lk("sip", "dispatch", "list", "--json", target=bridge).stdout, ListSIPDispatchRuleResponse) == []


def test_dispatch_rule_update_and_conflicts(lk: LkRunner, bridge: BridgeProcess) -> None:
    direct = created_id(lk("sip", "dispatch", "create", "r.json", target=bridge,
                           input_files={"r.json": docs.DISPATCH_DIRECT}).stdout)  # fmt: skip
    # A second catch-all rule without a PIN competes for the same calls.
    clash = lk("sip", "dispatch", "create", "r.json", target=bridge, check=False,
               input_files={"r.json": docs.DISPATCH_INDIVIDUAL_AGENT})  # fmt: skip
    assert clash.returncode != 0 and direct in clash.stderr + clash.stdout
    # The docs' update: callee rule with a PIN (the JSON form replaces the rule).
    lk("sip", "dispatch", "update", "--id", direct, "--trunks", "[]", "dispatch-rule.json", target=bridge,
       input_files={"dispatch-rule.json": docs.DISPATCH_UPDATE})  # fmt: skip
    # Now the agent rule (no PIN) no longer clashes.
    created_id(lk("sip", "dispatch", "create", "r.json", target=bridge,
                  input_files={"r.json": docs.DISPATCH_INDIVIDUAL_AGENT}).stdout)  # fmt: skip
    lk("sip", "dispatch", "update", "--id", direct, "--name", "flag-renamed", target=bridge)
    rules = {
        r.sip_dispatch_rule_id: r
        for r in listed(lk("sip", "dispatch", "list", "--json", target=bridge).stdout, ListSIPDispatchRuleResponse)
    }
    assert rules[direct].name == "flag-renamed"
    assert rules[direct].rule.dispatch_rule_callee.pin == "1234"
    assert len(rules) == 2


def test_unknown_ids_and_bad_credentials(lk: LkRunner, bridge: BridgeProcess) -> None:
    missing = lk("sip", "dispatch", "delete", "SDR_doesnotexist", target=bridge, check=False)
    assert missing.returncode != 0 and "not_found" in missing.stderr + missing.stdout
    denied = lk("sip", "inbound", "list", url=bridge.http_url, api_key=bridge.api_key,
                api_secret="not-the-secret-not-the-secret-1234", check=False)  # fmt: skip
    assert denied.returncode != 0 and "unauthenticated" in denied.stderr + denied.stdout


def test_restart_loses_nothing(lk: LkRunner, bridge: BridgeProcess) -> None:
    trunk = created_id(lk("sip", "inbound", "create", "t.json", target=bridge,
                          input_files={"t.json": docs.INBOUND_TRUNK}).stdout)  # fmt: skip
    rule = created_id(lk("sip", "dispatch", "create", "r.json", target=bridge,
                         input_files={"r.json": docs.DISPATCH_INDIVIDUAL_AGENT}).stdout)  # fmt: skip
    outbound = created_id(lk("sip", "outbound", "create", "o.json", target=bridge,
                             input_files={"o.json": docs.OUTBOUND_TRUNK_TWILIO}).stdout)  # fmt: skip
    bridge.restart()
    assert [t.sip_trunk_id for t in inbound(lk, bridge)] == [trunk]
    out = lk("sip", "outbound", "list", "--json", target=bridge).stdout
    assert [t.sip_trunk_id for t in listed(out, ListSIPOutboundTrunkResponse)] == [outbound]
    rules = listed(lk("sip", "dispatch", "list", "--json", target=bridge).stdout, ListSIPDispatchRuleResponse)
    assert [(r.sip_dispatch_rule_id, r.room_config.agents[0].agent_name) for r in rules] == [(rule, "inbound-agent")]
