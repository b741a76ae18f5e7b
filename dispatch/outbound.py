"""What a `CreateSIPParticipant` request makes of an outbound call: where to dial, as whom, and who joins the room.

Follows livekit/protocol's request validation and its ``NewCreateSIPParticipantRequest`` (what livekit-server hands
a SIP node): the trunk's settings, then the request's on top; the caller number is ``sip_number`` or one of the
trunk's numbers; the identity defaults to ``sip_<number called>``; the attributes carry ``sip.callID`` and
``sip.trunkID`` and, unless ``hide_phone_number``, ``sip.phoneNumber``, ``sip.hostname`` and
``sip.trunkPhoneNumber``. The plan is plain data, so the standalone API and the cluster mode (which receives the same
fields from livekit-server) drive one call flow.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

from google.protobuf.message import Message
from livekit.protocol.sip import (
    CreateSIPParticipantRequest,
    SIPHeaderOptions,
    SIPMediaConfig,
    SIPMediaEncryption,
    SIPOutboundTrunkInfo,
    SIPTransport,
    TransferSIPParticipantRequest,
)

from dispatch.errors import RequestError
from dispatch.evaluate import (
    ATTR_CALL_ID,
    ATTR_HOSTNAME,
    ATTR_PHONE_NUMBER,
    ATTR_TRUNK_ID,
    ATTR_TRUNK_PHONE_NUMBER,
    headers_as_attributes,
)
from dispatch.header_rules import header_name_problem, header_value_problem

MAX_DISPLAY_NAME = 128
DEFAULT_TRANSFER_TIMEOUT = 30.0
"""livekit-server's bound on a transfer when the request sets no ``ringing_timeout``."""


@dataclass(frozen=True)
class OutboundPlan:
    """An outbound call, ready to dial (the fields of LiveKit's ``InternalCreateSIPParticipantRequest``)."""

    lk_call_id: str
    trunk_id: str
    address: str
    """The trunk's ``address``: ``host`` or ``host:port`` the INVITE goes to."""
    transport: int
    """A ``SIPTransport``; AUTO means UDP."""
    number: str
    """The caller number (From user)."""
    call_to: str
    """The number or SIP user dialled (To and Request-URI user)."""
    from_host: str
    """The From header's host; empty means the bridge's own address."""
    username: str
    password: str
    room_name: str
    participant_identity: str
    participant_name: str = ""
    participant_metadata: str = ""
    participant_attributes: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    include_headers: int = SIPHeaderOptions.SIP_NO_HEADERS
    headers_to_attributes: dict[str, str] = field(default_factory=dict)
    attributes_to_headers: dict[str, str] = field(default_factory=dict)
    dtmf: str = ""
    play_dialtone: bool = False
    ringing_timeout: float | None = None
    max_call_duration: float | None = None
    krisp_enabled: bool = False
    media: SIPMediaConfig = field(default_factory=SIPMediaConfig)
    wait_until_answered: bool = False
    display_name: str | None = None
    ws_url: str = ""
    """Where the room is; empty means the bridge's configured ``ws_url``."""
    token: str = ""
    """A join token minted by livekit-server; empty means the bridge mints its own."""

    @property
    def transport_name(self) -> str:
        if self.transport == SIPTransport.SIP_TRANSPORT_TCP:
            return "TCP"
        return "TLS" if self.transport == SIPTransport.SIP_TRANSPORT_TLS else "UDP"

    def invite_headers(self, attributes: Mapping[str, str]) -> dict[str, str]:
        """Headers for the INVITE: the trunk's and the request's, plus ``attributes_to_headers`` of `attributes`."""
        headers = dict(self.headers)
        for attribute, header in self.attributes_to_headers.items():
            if attribute in attributes:
                headers[header] = attributes[attribute]
        return headers

    def answer_attributes(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Attributes taken from the callee's 200 OK: ``include_headers`` and ``headers_to_attributes``."""
        return headers_as_attributes(headers, self.include_headers, self.headers_to_attributes)


def plan_outbound_call(
    request: CreateSIPParticipantRequest,
    trunk: SIPOutboundTrunkInfo | None,
    lk_call_id: str,
    choose: random.Random | None = None,
) -> OutboundPlan:
    """Validate `request` against LiveKit's rules and merge it with `trunk` (None when the request names none).

    Raises RequestError (``invalid_argument`` naming the field, or ``failed_precondition`` when the trunk has no
    number to call from).
    """
    validate_create_request(request)
    if request.sip_trunk_id and trunk is None:
        raise RequestError("not_found", f"sip_trunk_id: requested sip trunk {request.sip_trunk_id!r} does not exist")
    inline = request.trunk if request.HasField("trunk") else None
    if trunk is not None:
        address, transport = trunk.address, trunk.transport
        username, password = trunk.auth_username, trunk.auth_password
        headers = dict(trunk.headers)
        include = trunk.include_headers
        to_attributes, to_headers = dict(trunk.headers_to_attributes), dict(trunk.attributes_to_headers)
        from_host = trunk.from_host
        media = media_with_encryption(trunk.media if trunk.HasField("media") else None, trunk.media_encryption)
    elif inline is not None:
        address, transport = inline.hostname, inline.transport
        username, password = inline.auth_username, inline.auth_password
        headers, include = {}, SIPHeaderOptions.SIP_NO_HEADERS
        to_attributes, to_headers = dict(inline.headers_to_attributes), dict(inline.attributes_to_headers)
        from_host = inline.from_host
        media = SIPMediaConfig()
    else:
        raise RequestError("invalid_argument", "sip_trunk_id: an outbound trunk (sip_trunk_id or trunk) is required")
    if not address:
        raise RequestError("failed_precondition", "trunk.address: the outbound trunk has no address to dial")

    number = request.sip_number
    if not number:
        numbers = [n for n in trunk.numbers if n != "*"] if trunk is not None else []
        if not numbers:
            raise RequestError(
                "failed_precondition", "sip_number: required, the outbound trunk has no number of its own to call from"
            )
        number = (choose or random).choice(numbers)
    if address.endswith("twilio.com") and not number.startswith("+"):
        number = "+" + number  # Twilio wants E.164 with the '+'

    trunk_id = request.sip_trunk_id or (trunk.sip_trunk_id if trunk is not None else "")
    attributes = dict(request.participant_attributes)
    attributes[ATTR_CALL_ID] = lk_call_id
    attributes[ATTR_TRUNK_ID] = trunk_id
    if not request.hide_phone_number:
        attributes[ATTR_PHONE_NUMBER] = request.sip_call_to
        attributes[ATTR_HOSTNAME] = address
        attributes[ATTR_TRUNK_PHONE_NUMBER] = number
    headers.update(request.headers)
    if request.include_headers:
        include = request.include_headers
    if request.HasField("media"):
        media = media_with_encryption(request.media, media.encryption)
    elif request.media_encryption:
        media = media_with_encryption(media, request.media_encryption)
    return OutboundPlan(
        lk_call_id=lk_call_id,
        trunk_id=trunk_id,
        address=address,
        transport=transport,
        number=number,
        call_to=request.sip_call_to,
        from_host=from_host,
        username=username,
        password=password,
        room_name=request.room_name,
        participant_identity=request.participant_identity or "sip_" + request.sip_call_to,
        participant_name=request.participant_name,
        participant_metadata=request.participant_metadata,
        participant_attributes=attributes,
        headers=headers,
        include_headers=include,
        headers_to_attributes=to_attributes,
        attributes_to_headers=to_headers,
        dtmf=request.dtmf,
        play_dialtone=request.play_dialtone or request.play_ringtone,
        ringing_timeout=duration_seconds(request, "ringing_timeout"),
        max_call_duration=duration_seconds(request, "max_call_duration"),
        krisp_enabled=request.krisp_enabled,
        media=media,
        wait_until_answered=request.wait_until_answered,
        display_name=request.display_name if request.HasField("display_name") else None,
    )


def validate_create_request(request: CreateSIPParticipantRequest) -> None:
    """LiveKit's checks on a CreateSIPParticipant request, each naming the field."""
    if not request.sip_trunk_id and not request.HasField("trunk") and not request.sip_number:
        raise RequestError("invalid_argument", "sip_trunk_id: missing sip trunk id and sip number")
    if not request.sip_call_to:
        raise RequestError("invalid_argument", "sip_call_to: missing sip callee number")
    if "@" in request.sip_call_to:
        raise RequestError("invalid_argument", "sip_call_to: should be a phone number or SIP user, not a full SIP URI")
    if not request.room_name:
        raise RequestError("invalid_argument", "room_name: missing room name")
    if request.HasField("display_name") and len(request.display_name) > MAX_DISPLAY_NAME:
        raise RequestError("invalid_argument", f"display_name: too long (max {MAX_DISPLAY_NAME} characters)")
    if set(request.dtmf.lower()) - set("0123456789*#abcdw"):
        raise RequestError("invalid_argument", f"dtmf: {request.dtmf!r} may hold only 0-9, *, #, A-D and w (pause)")
    _validate_headers("headers", request.headers)


def validate_transfer_request(request: TransferSIPParticipantRequest) -> str:
    """LiveKit's checks on a transfer; returns the target as the Refer-To URI (without angle brackets)."""
    if not request.room_name:
        raise RequestError("invalid_argument", "room_name: missing room name")
    if not request.participant_identity:
        raise RequestError("invalid_argument", "participant_identity: missing participant identity")
    target = refer_target(request.transfer_to)
    if not target:
        raise RequestError("invalid_argument", "transfer_to: missing transfer target")
    if not target.startswith(("sip:", "sips:", "tel:")):
        raise RequestError("invalid_argument", "transfer_to: must be a SIP(S) or TEL URI (sip:, sips: or tel:)")
    _validate_headers("headers", request.headers)
    return target


def refer_target(transfer_to: str) -> str:
    """The URI of a ``transfer_to`` (``<sip:...>`` or a bare URI), for the Refer-To header."""
    target = transfer_to.strip()
    return target[1:-1] if target.startswith("<") and target.endswith(">") else target


def transfer_timeout(request: TransferSIPParticipantRequest) -> float:
    """How long a transfer may take: the request's ``ringing_timeout``, else livekit-server's 30 s."""
    return duration_seconds(request, "ringing_timeout") or DEFAULT_TRANSFER_TIMEOUT


def _validate_headers(where: str, headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        problem = header_name_problem(name, reserved_forbidden=True) or header_value_problem(name, value)
        if problem:
            raise RequestError("invalid_argument", f"{where}: {problem}")


def media_with_encryption(media: SIPMediaConfig | None, encryption: int) -> SIPMediaConfig:
    """A copy of `media` whose encryption falls back to the deprecated ``media_encryption`` field's value."""
    merged = SIPMediaConfig()
    if media is not None:
        merged.CopyFrom(media)
    if not merged.encryption and encryption:
        merged.encryption = cast(SIPMediaEncryption, encryption)
    return merged


def duration_seconds(message: Message, name: str) -> float | None:
    """A ``google.protobuf.Duration`` field in seconds; None when unset or not positive (meaning: the default)."""
    if not message.HasField(name):
        return None
    seconds = float(getattr(message, name).ToTimedelta().total_seconds())
    return seconds if seconds > 0 else None
