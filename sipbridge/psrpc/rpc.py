"""The `rpc` package messages SIP exchanges with livekit-server (services `SIPInternal` and `IOInfo`).

Names and field numbers are those of livekit/protocol's `rpc/sip.proto` and `rpc/io.proto` (see
shared/docs/psrpc-sip.md §4.1); the `livekit.*` field types come from the livekit-protocol package. Fields marked
deprecated upstream are still declared, because livekit-server still reads them when the newer ones are absent.
"""

from __future__ import annotations

from typing import Annotated

from google.protobuf.duration_pb2 import Duration
from google.protobuf.internal.containers import (
    RepeatedCompositeFieldContainer,
    RepeatedScalarFieldContainer,
    ScalarMap,
)
from google.protobuf.message import Message
from livekit.protocol.room import RoomConfiguration
from livekit.protocol.sip import (
    Destination,
    ProviderInfo,
    SIPCallInfo,
    SIPFeature,
    SIPHeaderOptions,
    SIPMediaConfig,
    SIPMediaEncryption,
    SIPNamedDest,
    SIPRequestDest,
    SIPStatus,
    SIPTransferInfo,
    SIPTransferReason,
    SIPTransferStatus,
    SIPTransport,
    SIPUri,
)

from sipbridge.psrpc.schema import F, ProtoEnum, enum, message


@enum("rpc")
class SIPDispatchResult(ProtoEnum):
    LEGACY_ACCEPT_OR_PIN = 0  # look at `request_pin`
    ACCEPT = 1
    REQUEST_PIN = 2
    REJECT = 3
    DROP = 4


@enum("rpc")
class SIPTrunkAuthenticationError(ProtoEnum):
    SIP_TRUNK_AUTH_ERROR_NONE = 0
    SIP_TRUNK_AUTH_ERROR_QUOTA_EXCEEDED = 1
    SIP_TRUNK_AUTH_ERROR_NO_TRUNK_FOUND = 2


@message("rpc")
class SIPCall(Message):
    """An inbound INVITE as livekit-server matches it against trunks and rules."""

    lk_call_id: Annotated[str, F(1)]
    source_ip: Annotated[str, F(2)]  # without port
    address: Annotated[SIPUri, F(3)]  # the request line
    from_: Annotated[SIPUri, F(4, name="from")]
    to: Annotated[SIPUri, F(5)]
    via: Annotated[RepeatedCompositeFieldContainer[SIPUri], F(6)]
    sip_call_id: Annotated[str, F(7)]  # the SIP Call-ID header
    project_id: Annotated[str, F(8)]
    features: Annotated[ScalarMap[str, str], F(9)]


@message("rpc")
class SIPCallObservability(Message):
    destination: Annotated[str, F(1)]
    lifetime_days: Annotated[int, F(2, kind="uint32")]
    carrier_id: Annotated[str, F(3)]
    country_code: Annotated[str, F(4)]
    # livekit.PhoneNumberType upstream, which livekit-protocol for Python lacks; an enum is an int32 on the wire.
    number_type: Annotated[int, F(5, kind="int32")]


@message("rpc")
class GetSIPTrunkAuthenticationRequest(Message):
    call: Annotated[SIPCall, F(8)]
    # Deprecated upstream, still filled by the Go node for older servers.
    sip_call_id: Annotated[str, F(6)]
    from_: Annotated[str, F(2, name="from")]
    from_host: Annotated[str, F(7)]
    to: Annotated[str, F(3)]
    to_host: Annotated[str, F(5)]
    src_address: Annotated[str, F(4)]


@message("rpc")
class GetSIPTrunkAuthenticationResponse(Message):
    username: Annotated[str, F(1)]
    password: Annotated[str, F(2)]
    realm: Annotated[str, F(9)]
    drop: Annotated[bool, F(3)]
    sip_trunk_id: Annotated[str, F(4)]
    project_id: Annotated[str, F(5)]
    provider_info: Annotated[ProviderInfo, F(6)]
    error_code: Annotated[int, F(7, enum=SIPTrunkAuthenticationError)]
    feature_flags: Annotated[ScalarMap[str, str], F(8)]
    observability: Annotated[SIPCallObservability, F(10)]


@message("rpc")
class EvaluateSIPDispatchRulesRequest(Message):
    sip_trunk_id: Annotated[str, F(10)]
    call: Annotated[SIPCall, F(12)]
    pin: Annotated[str, F(5)]
    no_pin: Annotated[bool, F(6)]
    extra_attributes: Annotated[ScalarMap[str, str], F(9)]
    # Deprecated upstream, still filled by the Go node for older servers.
    sip_call_id: Annotated[str, F(8)]
    sip_participant_id: Annotated[str, F(1)]
    calling_number: Annotated[str, F(2)]
    calling_host: Annotated[str, F(11)]
    called_number: Annotated[str, F(3)]
    src_address: Annotated[str, F(4)]
    called_host: Annotated[str, F(7)]


@message("rpc")
class EvaluateSIPDispatchRulesResponse(Message):
    room_name: Annotated[str, F(1)]
    participant_identity: Annotated[str, F(2)]
    participant_name: Annotated[str, F(7)]
    participant_metadata: Annotated[str, F(8)]
    participant_attributes: Annotated[ScalarMap[str, str], F(11)]
    request_pin: Annotated[bool, F(3)]  # deprecated: see `result`
    token: Annotated[str, F(4)]
    ws_url: Annotated[str, F(5)]
    result: Annotated[int, F(6, enum=SIPDispatchResult)]
    sip_trunk_id: Annotated[str, F(9)]
    sip_dispatch_rule_id: Annotated[str, F(10)]
    project_id: Annotated[str, F(12)]
    headers: Annotated[ScalarMap[str, str], F(13)]
    headers_to_attributes: Annotated[ScalarMap[str, str], F(14)]
    attributes_to_headers: Annotated[ScalarMap[str, str], F(18)]
    include_headers: Annotated[int, F(19, enum=SIPHeaderOptions)]
    enabled_features: Annotated[RepeatedScalarFieldContainer[int], F(15, enum=SIPFeature)]
    ringing_timeout: Annotated[Duration, F(16)]
    max_call_duration: Annotated[Duration, F(17)]
    room_preset: Annotated[str, F(20)]
    room_config: Annotated[RoomConfiguration, F(21)]
    media_encryption: Annotated[int, F(22, enum=SIPMediaEncryption)]  # deprecated: see `media`
    media: Annotated[SIPMediaConfig, F(24)]
    feature_flags: Annotated[ScalarMap[str, str], F(23)]


@message("rpc")
class UpdateSIPCallStateRequest(Message):
    """One or the other: a call's state, or a transfer's."""

    call_info: Annotated[SIPCallInfo, F(1)]
    transfer_info: Annotated[SIPTransferInfo, F(2)]


@message("rpc")
class RecordCallContextRequest(Message):
    call_info: Annotated[SIPCallInfo, F(1)]


@message("rpc")
class InternalCreateSIPParticipantRequest(Message):
    """An outbound call, as livekit-server builds it from `CreateSIPParticipant` and the outbound trunk."""

    project_id: Annotated[str, F(18)]
    sip_call_id: Annotated[str, F(13)]
    sip_trunk_id: Annotated[str, F(19)]
    sip_request_uri: Annotated[SIPRequestDest, F(35)]
    sip_from_header: Annotated[SIPNamedDest, F(36)]
    sip_to_header: Annotated[SIPNamedDest, F(37)]
    to_user_override: Annotated[str, F(39)]
    address: Annotated[str, F(2)]  # where the INVITE goes
    hostname: Annotated[str, F(20)]  # the From host; empty: our own
    destination_country: Annotated[str, F(30)]
    transport: Annotated[int, F(16, enum=SIPTransport)]
    number: Annotated[str, F(3)]  # calling number
    call_to: Annotated[str, F(4)]
    username: Annotated[str, F(5)]
    password: Annotated[str, F(6)]
    room_name: Annotated[str, F(7)]
    participant_identity: Annotated[str, F(8)]
    participant_name: Annotated[str, F(14)]
    participant_metadata: Annotated[str, F(15)]
    participant_attributes: Annotated[ScalarMap[str, str], F(17)]
    token: Annotated[str, F(9)]  # empty from livekit-server: the node mints one
    ws_url: Annotated[str, F(10)]  # empty from livekit-server: the node's own
    dtmf: Annotated[str, F(11)]
    play_dialtone: Annotated[bool, F(12)]
    headers: Annotated[ScalarMap[str, str], F(21)]
    headers_to_attributes: Annotated[ScalarMap[str, str], F(22)]
    attributes_to_headers: Annotated[ScalarMap[str, str], F(26)]
    include_headers: Annotated[int, F(27, enum=SIPHeaderOptions)]
    enabled_features: Annotated[RepeatedScalarFieldContainer[int], F(25, enum=SIPFeature)]
    ringing_timeout: Annotated[Duration, F(23)]
    max_call_duration: Annotated[Duration, F(24)]
    media_encryption: Annotated[int, F(28, enum=SIPMediaEncryption)]  # deprecated: see `media`
    media: Annotated[SIPMediaConfig, F(34)]
    wait_until_answered: Annotated[bool, F(29)]
    # Presence matters: unset = the From user as display name (legacy), "" = none, else this name.
    display_name: Annotated[str, F(31, optional=True)]
    destination: Annotated[Destination, F(32)]
    feature_flags: Annotated[ScalarMap[str, str], F(33)]
    observability: Annotated[SIPCallObservability, F(38)]


@message("rpc")
class InternalCreateSIPParticipantResponse(Message):
    participant_id: Annotated[str, F(1)]
    participant_identity: Annotated[str, F(2)]
    sip_call_id: Annotated[str, F(3)]


@message("rpc")
class InternalTransferSIPParticipantRequest(Message):
    sip_call_id: Annotated[str, F(1)]
    transfer_to: Annotated[str, F(2)]
    play_dialtone: Annotated[bool, F(3)]
    headers: Annotated[ScalarMap[str, str], F(4)]
    ringing_timeout: Annotated[Duration, F(5)]
    feature_flags: Annotated[ScalarMap[str, str], F(6)]


@message("rpc")
class InternalTransferSIPParticipantResponse(Message):
    """Newer livekit-servers read it; older ones expect `google.protobuf.Empty` and ignore these fields."""

    transfer_id: Annotated[str, F(1)]
    status: Annotated[int, F(2, enum=SIPTransferStatus)]
    reason: Annotated[int, F(3, enum=SIPTransferReason)]
    sip_status: Annotated[SIPStatus, F(4)]
