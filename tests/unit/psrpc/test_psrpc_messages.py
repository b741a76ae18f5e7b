"""Our message classes: field numbers exactly as the spec (shared/docs/psrpc-sip.md §1.5, §4.1), and the schema
builder's behaviour (presence, maps, enums, keyword-named fields, mistakes caught at import)."""

from __future__ import annotations

from typing import Annotated

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from livekit.protocol.sip import SIPFeature, SIPTransferStatus, SIPUri

from sipbridge.psrpc import rpc, wire
from sipbridge.psrpc.schema import F, message

SPEC = {
    wire.Request: "request_id=1 client_id=2 sent_at=3 expiry=4 multi=5 metadata=7 raw_request=8",
    wire.Response: "request_id=1 server_id=2 sent_at=3 error=5 code=6 raw_response=7 error_details=8",
    wire.ClaimRequest: "request_id=1 server_id=2 affinity=3",
    wire.ClaimResponse: "request_id=1 server_id=2",
    wire.Msg: "type_url=1 value=2 channel=3",
    rpc.InternalCreateSIPParticipantRequest: (
        "project_id=18 sip_call_id=13 sip_trunk_id=19 sip_request_uri=35 sip_from_header=36 sip_to_header=37 "
        "to_user_override=39 address=2 hostname=20 destination_country=30 transport=16 number=3 call_to=4 "
        "username=5 password=6 room_name=7 participant_identity=8 participant_name=14 participant_metadata=15 "
        "participant_attributes=17 token=9 ws_url=10 dtmf=11 play_dialtone=12 headers=21 headers_to_attributes=22 "
        "attributes_to_headers=26 include_headers=27 enabled_features=25 ringing_timeout=23 max_call_duration=24 "
        "media_encryption=28 media=34 wait_until_answered=29 display_name=31 destination=32 feature_flags=33 "
        "observability=38"
    ),
    rpc.InternalCreateSIPParticipantResponse: "participant_id=1 participant_identity=2 sip_call_id=3",
    rpc.InternalTransferSIPParticipantRequest: (
        "sip_call_id=1 transfer_to=2 play_dialtone=3 headers=4 ringing_timeout=5 feature_flags=6"
    ),
    rpc.InternalTransferSIPParticipantResponse: "transfer_id=1 status=2 reason=3 sip_status=4",
    rpc.SIPCall: "lk_call_id=1 source_ip=2 address=3 from=4 to=5 via=6 sip_call_id=7 project_id=8 features=9",
    rpc.GetSIPTrunkAuthenticationRequest: "call=8 sip_call_id=6 from=2 from_host=7 to=3 to_host=5 src_address=4",
    rpc.GetSIPTrunkAuthenticationResponse: (
        "username=1 password=2 realm=9 drop=3 sip_trunk_id=4 project_id=5 provider_info=6 error_code=7 "
        "feature_flags=8 observability=10"
    ),
    rpc.EvaluateSIPDispatchRulesRequest: (
        "sip_trunk_id=10 call=12 pin=5 no_pin=6 extra_attributes=9 sip_call_id=8 sip_participant_id=1 "
        "calling_number=2 calling_host=11 called_number=3 src_address=4 called_host=7"
    ),
    rpc.EvaluateSIPDispatchRulesResponse: (
        "room_name=1 participant_identity=2 participant_name=7 participant_metadata=8 participant_attributes=11 "
        "request_pin=3 token=4 ws_url=5 result=6 sip_trunk_id=9 sip_dispatch_rule_id=10 project_id=12 headers=13 "
        "headers_to_attributes=14 attributes_to_headers=18 include_headers=19 enabled_features=15 "
        "ringing_timeout=16 max_call_duration=17 room_preset=20 room_config=21 media_encryption=22 media=24 "
        "feature_flags=23"
    ),
    rpc.SIPCallObservability: "destination=1 lifetime_days=2 carrier_id=3 country_code=4 number_type=5",
    rpc.UpdateSIPCallStateRequest: "call_info=1 transfer_info=2",
    rpc.RecordCallContextRequest: "call_info=1",
}


@pytest.mark.parametrize("message_type", SPEC, ids=lambda t: t.DESCRIPTOR.full_name)
def test_field_numbers_are_those_of_the_spec(message_type: type[Message]) -> None:
    expected = dict(pair.split("=") for pair in SPEC[message_type].split())
    declared = {field.name: str(field.number) for field in message_type.DESCRIPTOR.fields}
    assert declared == expected


def test_names_are_in_the_packages_go_uses() -> None:
    assert wire.Request.DESCRIPTOR.full_name == "internal.Request"
    assert rpc.InternalCreateSIPParticipantRequest.DESCRIPTOR.full_name == "rpc.InternalCreateSIPParticipantRequest"
    assert rpc.SIPDispatchResult.DESCRIPTOR.full_name == "rpc.SIPDispatchResult"


def test_enums_are_those_of_the_spec() -> None:
    assert {m.name: m.value for m in rpc.SIPDispatchResult} == {
        "LEGACY_ACCEPT_OR_PIN": 0, "ACCEPT": 1, "REQUEST_PIN": 2, "REJECT": 3, "DROP": 4,
    }  # fmt: skip
    assert [m.value for m in rpc.SIPTrunkAuthenticationError] == [0, 1, 2]


def test_display_name_presence_survives_the_wire() -> None:
    unset = rpc.InternalCreateSIPParticipantRequest.FromString(b"")
    empty = rpc.InternalCreateSIPParticipantRequest.FromString(
        rpc.InternalCreateSIPParticipantRequest(display_name="").SerializeToString()
    )
    assert not unset.HasField("display_name")
    assert empty.HasField("display_name") and empty.display_name == ""


def test_known_bytes_decode() -> None:
    # sip_call_id (13) "SCL_1", participant_attributes (17) {"sip.callID": "SCL_1"}, enabled_features (25) [1]
    data = b"\x6a\x05SCL_1\x8a\x01\x13\x0a\x0asip.callID\x12\x05SCL_1\xca\x01\x01\x01"
    request = rpc.InternalCreateSIPParticipantRequest.FromString(data)
    assert request.sip_call_id == "SCL_1"
    assert dict(request.participant_attributes) == {"sip.callID": "SCL_1"}
    assert list(request.enabled_features) == [SIPFeature.KRISP_ENABLED]


def test_keyword_named_fields_read_through_an_alias() -> None:
    call = rpc.SIPCall(**{"from": SIPUri(user="+13105550100")}, to=SIPUri(user="+15105550100"))
    call.from_.host = "carrier.example.com"
    assert getattr(call, "from") == SIPUri(user="+13105550100", host="carrier.example.com")
    assert json_format.MessageToDict(call)["from"] == {"user": "+13105550100", "host": "carrier.example.com"}
    legacy = rpc.GetSIPTrunkAuthenticationRequest(**{"from": "+13105550100"})
    assert legacy.from_ == "+13105550100"


def test_livekit_enum_fields_take_livekit_values() -> None:
    response = rpc.InternalTransferSIPParticipantResponse(status=SIPTransferStatus.STS_TRANSFER_SUCCESSFUL)
    assert json_format.MessageToDict(response) == {"status": "STS_TRANSFER_SUCCESSFUL"}


def test_ambiguous_annotations_are_rejected_at_declaration() -> None:
    with pytest.raises(TypeError, match="kind"):

        @message("sipbridge.test")
        class NoKind(Message):
            count: Annotated[int, F(1)]

    with pytest.raises(TypeError, match="Annotated"):

        @message("sipbridge.test")
        class NoNumber(Message):
            name: str
