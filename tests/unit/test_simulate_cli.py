"""``sipbridge dispatch test`` against a real embedded store written through the store API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from livekit.protocol.sip import (
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleIndividual,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
    SIPTrunkInfo,
)

from sipbridge.cli import main
from sipbridge.config import load_config
from sipbridge.store import open_store

TO = "+15105550100"
FROM = "+13105550100"


@pytest.fixture
def config_path(tmp_path: Path) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(f"storage:\n  path: {tmp_path / 'store.json'}\n")
    return str(path)


def write(
    config_path: str,
    trunks: Sequence[SIPInboundTrunkInfo] = (),
    rules: Sequence[SIPDispatchRuleInfo] = (),
    legacy: Sequence[SIPTrunkInfo] = (),
) -> None:
    async def put() -> None:
        store = await open_store(load_config(config_path))
        try:
            for trunk in trunks:
                await store.put_inbound_trunk(trunk)
            for rule in rules:
                await store.put_dispatch_rule(rule)
            for old in legacy:
                await store.put_legacy_trunk(old)
        finally:
            await store.close()

    asyncio.run(put())


INDIVIDUAL = SIPDispatchRuleInfo(
    sip_dispatch_rule_id="SDR_call",
    name="My dispatch rule",
    rule=SIPDispatchRule(dispatch_rule_individual=SIPDispatchRuleIndividual(room_prefix="call-")),
    attributes={"team": "support"},
)
TRUNK = SIPInboundTrunkInfo(sip_trunk_id="ST_twilio", name="Twilio", numbers=[TO], allowed_addresses=["203.0.113.0/24"])


def run(config_path: str, *args: str) -> int:
    return main(["--config", config_path, "dispatch", "test", "--to", TO, "--from", FROM, *args])


def test_accepted_call_text(config_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    write(config_path, [TRUNK], [INDIVIDUAL])
    assert run(config_path, "--source", "203.0.113.7", "--header", "X-Twilio-CallSid=CA123") == 0
    out = capsys.readouterr().out
    assert "trunk: ST_twilio (Twilio)" in out
    assert "rule: SDR_call (My dispatch rule), dispatchRuleIndividual" in out
    assert f"room: call-_{FROM}_<random>" in out
    assert f"participant: sip_{FROM} (Phone {FROM})" in out
    assert "  sip.twilio.callSid = CA123" in out and "  team = support" in out


def test_refused_call_lists_what_was_considered(config_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    write(config_path, [TRUNK], [INDIVIDUAL])
    assert run(config_path, "--source", "198.51.100.9") == 1
    out = capsys.readouterr().out
    assert "verdict: no_trunk (SIP 404)" in out
    assert "ST_twilio (Twilio): passed over" in out
    assert "not in allowed_addresses ['203.0.113.0/24']" in out


def test_json_with_pin_and_legacy_trunk(config_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    pin_rule = SIPDispatchRuleInfo(
        sip_dispatch_rule_id="SDR_pin",
        rule=SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name="open-room", pin="1234")),
    )
    legacy = SIPTrunkInfo(sip_trunk_id="ST_old", outbound_number=TO, inbound_username="u", inbound_password="p")
    write(config_path, rules=[pin_rule], legacy=[legacy])
    assert run(config_path, "--source", "203.0.113.7", "--pin", "1234", "--auth", "u", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "accept" and report["pin_requested"] is True
    assert report["trunk"]["id"] == "ST_old" and report["digest_auth"]["username"] == "u"
    assert "password" not in json.dumps(report["digest_auth"])
    assert report["room"] == "open-room"
    assert report["participant"]["attributes"]["sip.callStatus"] == "active"
    assert run(config_path, "--source", "203.0.113.7", "--json") == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "auth_required"


def test_bad_header_argument(config_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config_path, "--source", "203.0.113.7", "--header", "nonsense") == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err
