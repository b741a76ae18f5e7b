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
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

from google.protobuf.message import Message
from livekit.protocol.sip import (
    CreateSIPParticipantRequest,
    SIPHeaderOptions,
    SIPMediaConfig,
    SIPMediaEncryption,
    SIPNamedDest,
    SIPOutboundTrunkInfo,
    SIPRequestDest,
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
class Addressing:
    """Where an outbound INVITE goes and whom it names (URIs as text, display names None when absent)."""

    request_uri: str
    to: str
    to_display: str | None
    from_: str
    from_display: str | None


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
    request_uri: SIPRequestDest | None = None
    """``sip_request_uri``: the INVITE's Request-URI instead of ``sip:<call_to>@<address>``."""
    from_header: SIPNamedDest | None = None
    """``sip_from_header``: the From header (with its display name) instead of ``<number>@<from_host>``."""
    to_header: SIPNamedDest | None = None
    """``sip_to_header``: the To header instead of ``sip:<call_to>@<address>``."""
    to_user_override: str = ""
    """Replaces the user part of the To header."""
    ws_url: str = ""
    """Where the room is; empty means the bridge's configured ``ws_url``."""
    token: str = ""
    """A join token minted by livekit-server; empty means the bridge mints its own."""

    @property
    def transport_name(self) -> str:
        if self.transport == SIPTransport.SIP_TRANSPORT_TCP:
            return "TCP"
        return "TLS" if self.transport == SIPTransport.SIP_TRANSPORT_TLS else "UDP"

    def addressing(self, own_host: str) -> Addressing:
        """The INVITE's Request-URI, To and From, from the override fields where set (``sip_request_uri``,
        ``sip_to_header`` with ``to_user_override``, ``sip_from_header``), else from the trunk and numbers as
        livekit/sip builds them. ``own_host`` is the From host when neither the request nor the trunk names one.
        Raises RequestError (``invalid_argument`` naming the field) for a URI that cannot be used."""
        param = "" if self.transport_name == "UDP" else f";transport={self.transport_name.lower()}"
        dialled = f"sip:{self.call_to}@{self.address}{param}"
        request_uri = (
            _uri("sip_request_uri", self.request_uri, self.transport) if self.request_uri is not None else dialled
        )
        if self.to_header is not None:
            to = _uri("sip_to_header", self.to_header, self.transport)
            to_display = self.to_header.display_name or None
        else:
            to, to_display = dialled, None
        if self.to_user_override:
            to = _with_user(to, self.to_user_override)
        if self.from_header is not None:
            from_ = _uri("sip_from_header", self.from_header, self.transport)
            from_display = self.from_header.display_name or None
        else:
            from_ = f"sip:{self.number}@{self.from_host or own_host}"
            # As livekit/sip: no display_name at all shows the number; an empty one shows none.
            from_display = self.number if self.display_name is None else self.display_name or None
        return Addressing(request_uri, to, to_display, from_, from_display)

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
    plan = OutboundPlan(
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
        request_uri=request.sip_request_uri if request.HasField("sip_request_uri") else None,
        from_header=request.sip_from_header if request.HasField("sip_from_header") else None,
        to_header=request.sip_to_header if request.HasField("sip_to_header") else None,
        to_user_override=request.to_user_override,
    )
    plan.addressing("own.host")  # a URI that cannot be used is the request's error, before anything is dialled
    return plan


_TRANSPORTS: dict[int, str] = {
    SIPTransport.SIP_TRANSPORT_UDP: "udp",
    SIPTransport.SIP_TRANSPORT_TCP: "tcp",
    SIPTransport.SIP_TRANSPORT_TLS: "tls",
}
_SIP_USER = re.compile(r"[0-9A-Za-z\-.!%*_+`'~]+")
"""livekit/protocol's token characters: what a SIP user (a number or a name) may hold here."""
_URI_FORBIDDEN = re.compile(r"[\s<>\"\x00-\x1f\x7f]")


def _uri(field: str, dest: SIPRequestDest | SIPNamedDest, transport: int) -> str:
    """A ``SIPRequestDest``/``SIPNamedDest`` (``raw`` text or ``values``) as SIP URI text, checked."""
    kind = dest.WhichOneof("uri")
    if kind == "raw":
        raw = str(dest.raw).strip()
        if raw.startswith("<") and raw.endswith(">"):
            raw = raw[1:-1]
        if not raw.startswith(("sip:", "sips:")) or _URI_FORBIDDEN.search(raw) or len(raw) > 512:
            raise RequestError("invalid_argument", f"{field}.raw: {raw[:80]!r} is not a sip: or sips: URI")
        if transport in _TRANSPORTS and transport != SIPTransport.SIP_TRANSPORT_UDP and "transport=" not in raw:
            raw += f";transport={_TRANSPORTS[transport]}"
        return raw
    if kind != "values":
        raise RequestError("invalid_argument", f"{field}: set raw or values")
    values = dest.values
    if values.transport and transport and values.transport != transport:
        raise RequestError("invalid_argument", f"{field}.values.transport: differs from the trunk's transport")
    chosen = int(values.transport or transport)
    if not values.user or not _SIP_USER.fullmatch(values.user):
        raise RequestError("invalid_argument", f"{field}.values.user: a phone number or SIP user is required")
    host = values.host or values.ip
    if not host or _URI_FORBIDDEN.search(host) or any(c in host for c in "@;?"):
        raise RequestError("invalid_argument", f"{field}.values: host or ip is required (a name or an address)")
    if values.host and ":" in values.host:
        raise RequestError("invalid_argument", f"{field}.values.host: must not contain a port (set port)")
    if ":" in host:
        host = f"[{host.strip('[]')}]"  # an IPv6 address
    port = f":{values.port}" if values.port else ""
    param = (
        f";transport={_TRANSPORTS[chosen]}"
        if chosen in _TRANSPORTS and chosen != SIPTransport.SIP_TRANSPORT_UDP
        else ""
    )
    return f"sip:{values.user}@{host}{port}{param}"


def _with_user(uri: str, user: str) -> str:
    """`uri` with its user part replaced (added when it has none)."""
    scheme, _, rest = uri.partition(":")
    _, at, host = rest.rpartition("@")
    return f"{scheme}:{user}@{host if at else rest}"


def validate_create_request(request: CreateSIPParticipantRequest) -> None:
    """LiveKit's checks on a CreateSIPParticipant request, each naming the field."""
    if not request.sip_trunk_id and not request.HasField("trunk") and not request.sip_number:
        raise RequestError("invalid_argument", "sip_trunk_id: missing sip trunk id and sip number")
    if not request.sip_call_to:
        raise RequestError("invalid_argument", "sip_call_to: missing sip callee number")
    if "@" in request.sip_call_to:
        raise RequestError("invalid_argument", "sip_call_to: should be a phone number or SIP user, not a full SIP URI")
    if request.to_user_override and not _SIP_USER.fullmatch(request.to_user_override):
        raise RequestError(
            "invalid_argument", "to_user_override: should be a phone number or SIP user, not a full SIP URI"
        )
    if not request.room_name:
        raise RequestError("invalid_argument", "room_name: missing room name")
    if request.HasField("display_name") and len(request.display_name) > MAX_DISPLAY_NAME:
        raise RequestError("invalid_argument", f"display_name: too long (max {MAX_DISPLAY_NAME} characters)")
    if request.HasField("destination"):
        _validate_destination(request)
    if set(request.dtmf.lower()) - set("0123456789*#abcdw"):
        raise RequestError("invalid_argument", f"dtmf: {request.dtmf!r} may hold only 0-9, *, #, A-D and w (pause)")
    _validate_headers("headers", request.headers)


def _validate_destination(request: CreateSIPParticipantRequest) -> None:
    """livekit/protocol's checks (LiveKit Cloud picks a region with it; here it only has to be well formed)."""
    destination = request.destination
    if destination.city and not (destination.country or destination.region):
        raise RequestError(
            "invalid_argument", "destination.city: if city is specified, country or region must also be specified"
        )
    if destination.country and not (len(destination.country) == 2 and destination.country.isalpha()
                                    and destination.country.isupper()):  # fmt: skip
        raise RequestError(
            "invalid_argument", "destination.country: must be an ISO 3166-1 alpha-2 code (like 'US', 'IN', 'GB')"
        )


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
