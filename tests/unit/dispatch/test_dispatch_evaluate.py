"""Evaluation of a selected rule: room names, identity, attributes, headers, media and limits."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from hypothesis import given
from hypothesis import strategies as st
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration
from livekit.protocol.sip import (
    SIPCodec,
    SIPDispatchRule,
    SIPDispatchRuleCallee,
    SIPDispatchRuleDirect,
    SIPDispatchRuleIndividual,
    SIPDispatchRuleInfo,
    SIPHeaderOptions,
    SIPInboundTrunkInfo,
    SIPMediaConfig,
    SIPMediaEncryption,
)

from dispatch.call import InviteFacts
from dispatch.evaluate import (
    SUFFIX_ALPHABET,
    evaluate_dispatch_rule,
    merged_media,
    participant_identity,
    random_suffix,
)

TO = "+15105550100"
FROM = "+13105550100"
HEADERS = (
    ("From", f'"Caller" <sip:{FROM}@sip.twilio.com>;tag=1'),
    ("To", f"<sip:{TO}@bridge.example.com>"),
    ("Call-ID", "abc@host"),
    ("X-Twilio-AccountSid", "AC123"),
    ("x-twilio-callsid", "CA456"),
    ("X-Foo", "first"),
    ("X-FOO", "second"),
    ("P-Custom", "custom"),
)
CALL = InviteFacts(
    called_number=TO,
    calling_number=FROM,
    source_ip="203.0.113.7",
    from_host="sip.twilio.com",
    lk_call_id="SCL_test",
    sip_call_id="abc@host",
    headers=HEADERS,
)
TRUNK = SIPInboundTrunkInfo(sip_trunk_id="ST_a", numbers=[TO])


def fixed_suffix() -> str:
    return "SUFFIX"


def info(rule: SIPDispatchRule, **fields: Any) -> SIPDispatchRuleInfo:
    return SIPDispatchRuleInfo(sip_dispatch_rule_id="SDR_r", rule=rule, **fields)


def individual(prefix: str = "", no_randomness: bool = False) -> SIPDispatchRule:
    return SIPDispatchRule(
        dispatch_rule_individual=SIPDispatchRuleIndividual(room_prefix=prefix, no_randomness=no_randomness)
    )


def callee(prefix: str = "", randomize: bool = False) -> SIPDispatchRule:
    return SIPDispatchRule(dispatch_rule_callee=SIPDispatchRuleCallee(room_prefix=prefix, randomize=randomize))


def direct(room: str = "my-room", pin: str = "") -> SIPDispatchRule:
    return SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name=room, pin=pin))


ROOMS = [
    ("direct", info(direct("my-room")), "my-room"),
    ("individual with prefix", info(individual("call-")), f"call-_{FROM}_SUFFIX"),
    ("individual without prefix", info(individual()), f"{FROM}_SUFFIX"),
    ("individual, no randomness", info(individual("call-", no_randomness=True)), f"call-_{FROM}"),
    ("individual, hidden number", info(individual("call-"), hide_phone_number=True), "call-_0100_SUFFIX"),
    ("callee with prefix", info(callee("number-")), f"number-_{TO}"),
    ("callee without prefix", info(callee()), TO),
    ("callee randomized", info(callee("number-", randomize=True)), f"number-_{TO}_SUFFIX"),
]


@pytest.mark.parametrize(("name", "rule", "room"), ROOMS, ids=[r[0] for r in ROOMS])
def test_room_names(name: str, rule: SIPDispatchRuleInfo, room: str) -> None:
    assert evaluate_dispatch_rule(TRUNK, rule, CALL, new_suffix=fixed_suffix).room_name == room


def test_random_suffix_looks_like_livekit() -> None:
    suffix = random_suffix()
    assert len(suffix) == 12 and set(suffix) <= set(SUFFIX_ALPHABET)


def test_participant_and_sip_attributes() -> None:
    rule = info(direct(), name="rule", metadata='{"is_internal": true}', attributes={"k": "v", "sip.ruleID": "x"})
    result = evaluate_dispatch_rule(TRUNK, rule, CALL)
    assert result.participant_identity == f"sip_{FROM}"
    assert result.participant_name == f"Phone {FROM}"
    assert result.participant_metadata == '{"is_internal": true}'
    attrs = result.participant_attributes
    assert attrs["k"] == "v"
    assert attrs["sip.ruleID"] == "SDR_r"  # LiveKit's own attributes win over the rule's
    assert attrs["sip.callID"] == "SCL_test"
    assert attrs["sip.callIDFull"] == "abc@host"
    assert attrs["sip.callStatus"] == "ringing"
    assert attrs["sip.phoneNumber"] == FROM
    assert attrs["sip.trunkPhoneNumber"] == TO
    assert attrs["sip.trunkID"] == "ST_a"
    assert attrs["sip.hostname"] == "sip.twilio.com"
    assert attrs["sip.twilio.accountSid"] == "AC123"
    assert attrs["sip.twilio.callSid"] == "CA456"  # header name matched in any case
    assert not any(k.startswith("sip.h.") for k in attrs)  # include_headers defaults to none


def test_call_answered_for_pin_joins_active() -> None:
    result = evaluate_dispatch_rule(TRUNK, info(direct()), CALL, answered=True)
    assert result.participant_attributes["sip.callStatus"] == "active"


def test_trunkless_call() -> None:
    result = evaluate_dispatch_rule(None, info(direct()), CALL)
    assert result.trunk_id == "" and result.participant_attributes["sip.trunkID"] == ""
    assert result.headers == {} and result.ringing_timeout_seconds is None


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (SIPHeaderOptions.SIP_NO_HEADERS, {}),
        (SIPHeaderOptions.SIP_X_HEADERS, {"x-twilio-accountsid", "x-twilio-callsid", "x-foo"}),
        (
            SIPHeaderOptions.SIP_ALL_HEADERS,
            {"from", "to", "call-id", "x-twilio-accountsid", "x-twilio-callsid", "x-foo", "p-custom"},
        ),
    ],
)
def test_include_headers(option: Any, expected: set[str]) -> None:
    trunk = SIPInboundTrunkInfo(sip_trunk_id="ST_a", include_headers=option)
    attrs = evaluate_dispatch_rule(trunk, info(direct()), CALL).participant_attributes
    names = {k.removeprefix("sip.h.") for k in attrs if k.startswith("sip.h.")}
    assert names == set(expected)
    if expected:
        assert attrs["sip.h.x-foo"] == "second"  # the last of repeated headers, names lower-cased


def test_headers_to_attributes_any_case() -> None:
    trunk = SIPInboundTrunkInfo(sip_trunk_id="ST_a", headers_to_attributes={"x-foo": "foo", "P-CUSTOM": "custom"})
    attrs = evaluate_dispatch_rule(trunk, info(direct()), CALL).participant_attributes
    assert attrs["foo"] == "second" and attrs["custom"] == "custom"


def test_hidden_number_is_left_out_everywhere() -> None:
    trunk = SIPInboundTrunkInfo(
        sip_trunk_id="ST_a", include_headers=SIPHeaderOptions.SIP_ALL_HEADERS, headers_to_attributes={"From": "from"}
    )
    rule = info(individual("call-"), hide_phone_number=True)
    result = evaluate_dispatch_rule(trunk, rule, CALL, new_suffix=fixed_suffix)
    digest = hashlib.sha256(FROM.encode()).hexdigest()[:16]
    assert result.participant_identity == f"sip_{digest}"
    assert result.participant_name == "Phone 0100"
    attrs = result.participant_attributes
    for key in ("sip.phoneNumber", "sip.hostname", "sip.trunkPhoneNumber", "sip.h.from", "from"):
        assert key not in attrs
    assert attrs["sip.h.x-foo"] == "second"
    assert all(FROM not in value and FROM[1:] not in value for value in attrs.values())
    assert FROM not in result.room_name


def test_short_hidden_number_shows_one_digit() -> None:
    short = InviteFacts(called_number=TO, calling_number="1234", source_ip="")
    result = evaluate_dispatch_rule(None, info(direct(), hide_phone_number=True), short)
    assert result.participant_name == "Phone 4"


def test_trunk_settings_and_room_configuration() -> None:
    trunk = SIPInboundTrunkInfo(
        sip_trunk_id="ST_a",
        krisp_enabled=True,
        ringing_timeout=Duration(seconds=30),
        max_call_duration=Duration(seconds=3600),
        media_encryption=SIPMediaEncryption.SIP_MEDIA_ENCRYPT_ALLOW,
        headers={"X-Answer": "yes"},
        attributes_to_headers={"sip.callID": "X-LK-Call", "missing": "X-None"},
    )
    config = RoomConfiguration(agents=[RoomAgentDispatch(agent_name="inbound-agent", metadata="m")])
    rule = info(direct(), room_config=config, room_preset="preset")
    result = evaluate_dispatch_rule(trunk, rule, CALL)
    assert result.krisp_enabled
    assert result.ringing_timeout_seconds == 30 and result.max_call_duration_seconds == 3600
    assert result.media_encryption == SIPMediaEncryption.SIP_MEDIA_ENCRYPT_ALLOW
    assert result.room_config is not None and result.room_config.agents[0].agent_name == "inbound-agent"
    assert result.room_preset == "preset"
    assert result.answer_headers(result.participant_attributes) == {"X-Answer": "yes", "X-LK-Call": "SCL_test"}
    assert evaluate_dispatch_rule(None, info(direct(), krisp_enabled=True), CALL).krisp_enabled
    assert evaluate_dispatch_rule(None, info(direct()), CALL).room_config is None


E = SIPMediaEncryption


@pytest.mark.parametrize(
    ("trunk_enc", "rule_enc", "merged"),
    [
        (None, None, None),
        (E.SIP_MEDIA_ENCRYPT_ALLOW, None, E.SIP_MEDIA_ENCRYPT_ALLOW),
        (None, E.SIP_MEDIA_ENCRYPT_REQUIRE, E.SIP_MEDIA_ENCRYPT_REQUIRE),
        (E.SIP_MEDIA_ENCRYPT_REQUIRE, E.SIP_MEDIA_ENCRYPT_ALLOW, E.SIP_MEDIA_ENCRYPT_ALLOW),
        (E.SIP_MEDIA_ENCRYPT_REQUIRE, E.SIP_MEDIA_ENCRYPT_DISABLE, E.SIP_MEDIA_ENCRYPT_REQUIRE),
    ],
)
def test_media_encryption_merge(trunk_enc: Any, rule_enc: Any, merged: Any) -> None:
    trunk = SIPInboundTrunkInfo(media=SIPMediaConfig(encryption=trunk_enc) if trunk_enc is not None else None)
    rule = info(direct(), media=SIPMediaConfig(encryption=rule_enc) if rule_enc is not None else None)
    media = merged_media(trunk, rule)
    assert (media.encryption if media.HasField("encryption") else None) == merged


def test_media_codecs_and_timeout_merge() -> None:
    trunk = SIPInboundTrunkInfo(
        media=SIPMediaConfig(codecs=[SIPCodec(name="PCMU")], only_listed_codecs=True, media_timeout=Duration(seconds=9))
    )
    assert [c.name for c in merged_media(trunk, info(direct())).codecs] == ["PCMU"]
    rule = info(direct(), media=SIPMediaConfig(codecs=[SIPCodec(name="G722")]))
    media = merged_media(trunk, rule)
    assert [c.name for c in media.codecs] == ["G722"] and not media.only_listed_codecs
    assert media.media_timeout.seconds == 9


numbers = st.from_regex(r"\+?[1-9][0-9]{6,14}", fullmatch=True)
rules = st.sampled_from(
    [direct(), individual("call-"), individual(), callee("n-", randomize=True), callee(), individual("p", True)]
)
header_lists = st.lists(
    st.tuples(st.sampled_from(["X-A", "From", "P-Asserted-Identity", "X-Twilio-CallSid"]), st.text(max_size=30)),
    max_size=4,
)


@given(frm=numbers, to=numbers, rule=rules, hide=st.booleans(), headers=header_lists)
def test_evaluation_is_deterministic_apart_from_the_suffix(
    frm: str, to: str, rule: SIPDispatchRule, hide: bool, headers: list[tuple[str, str]]
) -> None:
    the_call = InviteFacts(called_number=to, calling_number=frm, source_ip="", headers=headers)
    rule_info = info(rule, hide_phone_number=hide)
    counter = itertools.count()
    first = evaluate_dispatch_rule(TRUNK, rule_info, the_call, new_suffix=lambda: f"S{next(counter)}")
    second = evaluate_dispatch_rule(TRUNK, rule_info, the_call, new_suffix=lambda: f"S{next(counter)}")
    assert first.room_name.removesuffix("S0") == second.room_name.removesuffix("S1")
    assert (first.participant_identity, first.participant_name, first.participant_attributes) == (
        second.participant_identity,
        second.participant_name,
        second.participant_attributes,
    )


@given(frm=numbers, headers=header_lists, include=st.sampled_from(list(SIPHeaderOptions.values())))
def test_identities_never_carry_a_hidden_number(frm: str, headers: list[tuple[str, str]], include: Any) -> None:
    headers = [*headers, ("From", f"<sip:{frm}@carrier>"), ("X-Caller", frm.lstrip("+"))]
    the_call = InviteFacts(called_number=TO, calling_number=frm, source_ip="", headers=headers)
    trunk = SIPInboundTrunkInfo(sip_trunk_id="ST_a", include_headers=include, headers_to_attributes={"From": "f"})
    result = evaluate_dispatch_rule(trunk, info(individual(), hide_phone_number=True), the_call)
    digits = frm.lstrip("+")
    assert digits not in result.participant_identity
    assert digits not in result.participant_name and digits not in result.room_name
    assert all(digits not in value for value in result.participant_attributes.values())
    assert result.participant_identity == participant_identity(frm, hide_phone_number=True)
