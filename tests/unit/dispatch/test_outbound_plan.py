"""CreateSIPParticipant / TransferSIPParticipant requests → an outbound plan, with LiveKit's defaults and checks."""

from __future__ import annotations

import random

import pytest
from livekit.protocol.sip import (
    CreateSIPParticipantRequest,
    Destination,
    SIPHeaderOptions,
    SIPMediaEncryption,
    SIPNamedDest,
    SIPOutboundConfig,
    SIPOutboundTrunkInfo,
    SIPRequestDest,
    SIPTransport,
    SIPUri,
    TransferSIPParticipantRequest,
)

from dispatch.errors import RequestError
from dispatch.outbound import plan_outbound_call, transfer_timeout, validate_transfer_request

TRUNK = SIPOutboundTrunkInfo(
    sip_trunk_id="ST_out", address="sip.carrier.test:5060", transport=SIPTransport.SIP_TRANSPORT_TCP,
    numbers=["+15105550100", "+15105550101"], auth_username="u", auth_password="p",
    headers={"X-Trunk": "t", "X-Both": "trunk"}, headers_to_attributes={"X-Ref": "ref"},
    attributes_to_headers={"team": "X-Team"}, media_encryption=SIPMediaEncryption.SIP_MEDIA_ENCRYPT_ALLOW,
)  # fmt: skip


def request(**fields: object) -> CreateSIPParticipantRequest:
    base: dict[str, object] = {"sip_trunk_id": "ST_out", "sip_call_to": "+12135550100", "room_name": "room"}
    return CreateSIPParticipantRequest(**{**base, **fields})  # type: ignore[arg-type]


def test_trunk_settings_request_on_top_and_the_documented_attributes() -> None:
    plan = plan_outbound_call(
        request(participant_attributes={"team": "sales"}, headers={"X-Both": "request"}, dtmf="1w2"),
        TRUNK, "SCL_1", random.Random(0),
    )  # fmt: skip
    assert (plan.address, plan.transport_name, plan.username, plan.password) == (
        "sip.carrier.test:5060",
        "TCP",
        "u",
        "p",
    )
    assert plan.number in TRUNK.numbers
    assert plan.participant_identity == "sip_+12135550100"
    assert plan.participant_attributes == {
        "team": "sales", "sip.callID": "SCL_1", "sip.trunkID": "ST_out", "sip.phoneNumber": "+12135550100",
        "sip.hostname": "sip.carrier.test:5060", "sip.trunkPhoneNumber": plan.number,
    }  # fmt: skip
    assert plan.invite_headers(plan.participant_attributes) == {"X-Trunk": "t", "X-Both": "request", "X-Team": "sales"}
    assert plan.media.encryption == SIPMediaEncryption.SIP_MEDIA_ENCRYPT_ALLOW
    assert plan.dtmf == "1w2"


def test_hidden_number_and_explicit_identity() -> None:
    plan = plan_outbound_call(request(hide_phone_number=True, participant_identity="me"), TRUNK, "SCL_1")
    assert plan.participant_identity == "me"
    assert not {"sip.phoneNumber", "sip.hostname", "sip.trunkPhoneNumber"} & set(plan.participant_attributes)


def test_any_number_trunk_needs_sip_number_and_twilio_gets_a_plus() -> None:
    star = SIPOutboundTrunkInfo(sip_trunk_id="ST_star", address="x.pstn.twilio.com", numbers=["*"])
    with pytest.raises(RequestError) as failure:
        plan_outbound_call(request(sip_trunk_id="ST_star"), star, "SCL_1")
    assert failure.value.code == "failed_precondition" and failure.value.message.startswith("sip_number")
    assert plan_outbound_call(request(sip_trunk_id="ST_star", sip_number="15105550100"), star, "SCL_1").number == (
        "+15105550100"
    )


def test_inline_trunk() -> None:
    inline = SIPOutboundConfig(hostname="pbx.test", transport=SIPTransport.SIP_TRANSPORT_UDP, auth_username="a")
    plan = plan_outbound_call(request(sip_trunk_id="", trunk=inline, sip_number="100"), None, "SCL_1")
    assert (plan.address, plan.number, plan.username, plan.trunk_id) == ("pbx.test", "100", "a", "")


def test_answer_headers_become_attributes() -> None:
    plan = plan_outbound_call(request(include_headers=SIPHeaderOptions.SIP_X_HEADERS), TRUNK, "SCL_1")
    headers = [("X-Ref", "42"), ("X-Other", "o"), ("Server", "carrier")]
    assert plan.answer_attributes(headers) == {"sip.h.x-ref": "42", "sip.h.x-other": "o", "ref": "42"}


@pytest.mark.parametrize(
    ("fields", "trunk", "code", "field"),
    [
        ({"sip_call_to": ""}, TRUNK, "invalid_argument", "sip_call_to"),
        ({"sip_call_to": "bob@example.com"}, TRUNK, "invalid_argument", "sip_call_to"),
        ({"room_name": ""}, TRUNK, "invalid_argument", "room_name"),
        ({"sip_trunk_id": ""}, None, "invalid_argument", "sip_trunk_id"),
        ({"sip_trunk_id": "ST_gone"}, None, "not_found", "sip_trunk_id"),
        ({"dtmf": "12x"}, TRUNK, "invalid_argument", "dtmf"),
        ({"headers": {"Call-ID": "x"}}, TRUNK, "invalid_argument", "headers"),
        ({"display_name": "x" * 129}, TRUNK, "invalid_argument", "display_name"),
    ],
)
def test_bad_requests_name_the_field(
    fields: dict[str, object], trunk: SIPOutboundTrunkInfo | None, code: str, field: str
) -> None:
    with pytest.raises(RequestError) as failure:
        plan_outbound_call(request(**fields), trunk, "SCL_1")
    assert failure.value.code == code and failure.value.message.startswith(field)


def test_transfer_requests() -> None:
    ok = TransferSIPParticipantRequest(room_name="r", participant_identity="p", transfer_to="<sip:agent@pbx.test>")
    assert validate_transfer_request(ok) == "sip:agent@pbx.test"
    assert transfer_timeout(ok) == 30.0
    ok.ringing_timeout.FromSeconds(5)
    assert transfer_timeout(ok) == 5.0
    for bad, field in [
        (TransferSIPParticipantRequest(participant_identity="p", transfer_to="tel:+1"), "room_name"),
        (TransferSIPParticipantRequest(room_name="r", transfer_to="tel:+1"), "participant_identity"),
        (TransferSIPParticipantRequest(room_name="r", participant_identity="p", transfer_to="+1555"), "transfer_to"),
    ]:
        with pytest.raises(RequestError) as failure:
            validate_transfer_request(bad)
        assert failure.value.message.startswith(field)


def _addressing(**fields: object) -> tuple[str, str, str]:
    plan = plan_outbound_call(request(**fields), TRUNK, "SCL_x")
    a = plan.addressing("203.0.113.1")
    to = f'"{a.to_display}" ' if a.to_display else ""
    from_ = f'"{a.from_display}" ' if a.from_display else ""
    return a.request_uri, f"{to}<{a.to}>", f"{from_}<{a.from_}>"


DIALLED = f"sip:+12135550100@{TRUNK.address};transport=tcp"


def test_default_addressing_is_the_trunk_and_numbers() -> None:
    uri, to, from_ = _addressing(sip_number="+15105550100")
    assert (uri, to) == (DIALLED, f"<{DIALLED}>")
    assert from_ == '"+15105550100" <sip:+15105550100@203.0.113.1>'  # no from_host: ours; the number shown


def test_each_override_changes_exactly_its_header() -> None:
    raw_uri = SIPRequestDest(raw="<sip:333@sip.another.com>")
    assert _addressing(sip_request_uri=raw_uri)[:2] == ("sip:333@sip.another.com;transport=tcp", f"<{DIALLED}>")
    values = SIPRequestDest(values=SIPUri(user="444", host="pbx.example.com", port=5080))
    assert _addressing(sip_request_uri=values)[0] == "sip:444@pbx.example.com:5080;transport=tcp"
    to = SIPNamedDest(display_name="Desk", values=SIPUri(user="555", ip="2001:db8::1"))
    assert _addressing(sip_to_header=to)[1] == '"Desk" <sip:555@[2001:db8::1];transport=tcp>'
    assert _addressing(to_user_override="ext-7")[1] == f"<sip:ext-7@{TRUNK.address};transport=tcp>"
    from_ = SIPNamedDest(display_name="LK", raw="sip:111@example.org")
    assert _addressing(sip_from_header=from_)[2] == '"LK" <sip:111@example.org;transport=tcp>'
    assert _addressing(display_name="")[2].startswith("<sip:")  # an empty display name shows none


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"sip_request_uri": SIPRequestDest(raw="tel:+1555")}, "sip_request_uri.raw"),
        ({"sip_request_uri": SIPRequestDest(raw="sip:a@b\r\nX-Evil: 1")}, "sip_request_uri.raw"),
        ({"sip_to_header": SIPNamedDest(values=SIPUri(host="x.example"))}, "sip_to_header.values.user"),
        ({"sip_from_header": SIPNamedDest(values=SIPUri(user="1", host="h:5060"))}, "sip_from_header.values.host"),
        ({"to_user_override": "bob@example.com"}, "to_user_override"),
    ],
)
def test_unusable_overrides_are_refused_naming_the_field(fields: dict[str, object], text: str) -> None:
    with pytest.raises(RequestError) as failure:
        plan_outbound_call(request(**fields), TRUNK, "SCL_x")
    assert failure.value.code == "invalid_argument" and text in failure.value.message


def test_destination_is_checked_as_livekit_does() -> None:
    for destination, field in (
        (Destination(city="Paris"), "destination.city"),
        (Destination(country="usa"), "destination.country"),
    ):
        with pytest.raises(RequestError, match=field):
            plan_outbound_call(request(destination=destination), TRUNK, "SCL_x")
    plan_outbound_call(request(destination=Destination(city="Paris", country="FR")), TRUNK, "SCL_x")
