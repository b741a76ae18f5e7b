"""What a selected dispatch rule makes of a call: room, participant, attributes, media and limits.

Follows livekit/protocol's ``EvaluateDispatchRule`` and the header mapping livekit/sip applies when
the participant joins. Room names use LiveKit's separators: ``<prefix>_<number>_<suffix>`` (the
prefix part only when a prefix is set, the suffix part only when randomised), so the docs' rule
with ``roomPrefix: "call-"`` gives ``call-_+15105550100_<12 random characters>``.

With ``hide_phone_number`` the identity is ``sip_`` and 16 hex digits of the SHA-256 of the number
(as LiveKit), the name and an individual room show only the last four digits, ``sip.phoneNumber``,
``sip.hostname`` and ``sip.trunkPhoneNumber`` are left out, and so is any header-derived attribute
whose value contains the number (LiveKit would copy a ``From`` header into ``sip.h.from``).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from livekit.protocol.room import RoomConfiguration
from livekit.protocol.sip import (
    SIPDispatchRuleInfo,
    SIPHeaderOptions,
    SIPInboundTrunkInfo,
    SIPMediaConfig,
    SIPMediaEncryption,
)

from dispatch.call import InviteFacts
from dispatch.numbers import normalize_number
from dispatch.rule_kinds import CALLEE, DIRECT, INDIVIDUAL, rule_kind

SUFFIX_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
SUFFIX_LENGTH = 12

ATTR_CALL_ID = "sip.callID"
ATTR_CALL_ID_FULL = "sip.callIDFull"
ATTR_CALL_TAG = "sip.callTag"
"""The far end's dialog tag (the caller's From tag, the callee's To tag), as livekit/sip sets it."""
ATTR_CALL_STATUS = "sip.callStatus"
ATTR_PHONE_NUMBER = "sip.phoneNumber"
ATTR_TRUNK_PHONE_NUMBER = "sip.trunkPhoneNumber"
ATTR_TRUNK_ID = "sip.trunkID"
ATTR_RULE_ID = "sip.ruleID"
ATTR_HOSTNAME = "sip.hostname"
ATTR_HEADER_PREFIX = "sip.h."

PROVIDER_HEADER_ATTRIBUTES = {
    "X-Twilio-AccountSid": "sip.twilio.accountSid",
    "X-Twilio-CallSid": "sip.twilio.callSid",
    "X-call_leg_id": "sip.telnyx.callLegID",
    "X-call_session_id": "sip.telnyx.callSessionID",
    "X-Amzn-ConnectContactId": "sip.amazon.contactId",
    "X-Amzn-ConnectInitialContactId": "sip.amazon.initialContactId",
    "X-Amzn-SourceAccount": "sip.amazon.sourceAccount",
    "X-Amzn-SourceArn": "sip.amazon.sourceArn",
    "X-Amzn-TargetArn": "sip.amazon.targetArn",
}
"""Headers carriers add that LiveKit always maps to attributes."""

STATUS_RINGING = "ringing"
STATUS_ACTIVE = "active"


def random_suffix() -> str:
    """A room-name suffix like LiveKit's: 12 characters of the shortuuid alphabet."""
    return "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(SUFFIX_LENGTH))


@dataclass(frozen=True)
class CallDispatch:
    """Everything the call flow needs to put an admitted call into a room."""

    trunk_id: str
    rule_id: str
    room_name: str
    participant_identity: str
    participant_name: str
    participant_metadata: str
    participant_attributes: dict[str, str]
    room_preset: str
    room_config: RoomConfiguration | None
    media: SIPMediaConfig
    krisp_enabled: bool
    ringing_timeout_seconds: float | None
    """The trunk's ``ringing_timeout``; None means the bridge default."""
    max_call_duration_seconds: float | None
    """The trunk's ``max_call_duration``; None means the bridge default (LiveKit's is, and caps at, 24 h)."""
    headers: dict[str, str] = field(default_factory=dict)
    """The trunk's ``headers``, added to the 200 OK."""
    attributes_to_headers: dict[str, str] = field(default_factory=dict)

    @property
    def media_encryption(self) -> int:
        """A ``SIPMediaEncryption`` value."""
        encryption: int = self.media.encryption
        return encryption

    def answer_headers(self, attributes: Mapping[str, str]) -> dict[str, str]:
        """Headers for the 200 OK: the trunk's ``headers`` plus ``attributes_to_headers`` applied to ``attributes``."""
        headers = dict(self.headers)
        for attribute, header in self.attributes_to_headers.items():
            if attribute in attributes:
                headers[header] = attributes[attribute]
        return headers


def _masked(number: str) -> str:
    """The last four digits (one when the number is that short), as LiveKit shows a hidden number."""
    keep = 1 if len(number) <= 4 else 4
    return number[-keep:]


def participant_identity(calling_number: str, hide_phone_number: bool) -> str:
    """``sip_<number>``, or ``sip_<16 hex digits of its SHA-256>`` when the number is hidden."""
    if hide_phone_number:
        return "sip_" + hashlib.sha256(calling_number.encode()).hexdigest()[:16]
    return "sip_" + calling_number


def room_name(rule: SIPDispatchRuleInfo, calling_number: str, called_number: str, new_suffix: Callable[[], str]) -> str:
    """The room a call goes to under ``rule``; ``new_suffix`` supplies the random part."""
    kind = rule_kind(rule)
    if kind == DIRECT:
        return rule.rule.dispatch_rule_direct.room_name
    if kind == INDIVIDUAL:
        individual = rule.rule.dispatch_rule_individual
        shown = _masked(calling_number) if rule.hide_phone_number else calling_number
        return _join(individual.room_prefix, shown, None if individual.no_randomness else new_suffix())
    assert kind == CALLEE
    callee = rule.rule.dispatch_rule_callee
    return _join(callee.room_prefix, called_number, new_suffix() if callee.randomize else None)


def _join(prefix: str, number: str, suffix: str | None) -> str:
    parts = ([prefix] if prefix else []) + [number] + ([suffix] if suffix is not None else [])
    return "_".join(parts)


def header_attributes(trunk: SIPInboundTrunkInfo | None, call: InviteFacts) -> dict[str, str]:
    """Attributes taken from the INVITE's headers: ``include_headers``, carrier IDs, ``headers_to_attributes``."""
    include = trunk.include_headers if trunk is not None else SIPHeaderOptions.SIP_NO_HEADERS
    attributes = headers_as_attributes(call.headers, include, PROVIDER_HEADER_ATTRIBUTES)
    if trunk is not None:
        attributes.update(
            headers_as_attributes(call.headers, SIPHeaderOptions.SIP_NO_HEADERS, trunk.headers_to_attributes)
        )
    return attributes


def headers_as_attributes(
    headers: Iterable[tuple[str, str]], include: int, mapping: Mapping[str, str]
) -> dict[str, str]:
    """``sip.h.<name>`` for the headers `include` selects (X- headers, or all), then `mapping` (header → attribute);
    the last header of a name wins."""
    listed = list(headers)
    attributes: dict[str, str] = {}
    if include != SIPHeaderOptions.SIP_NO_HEADERS:
        for name, value in listed:
            lower = name.lower()
            if lower and (include == SIPHeaderOptions.SIP_ALL_HEADERS or lower.startswith("x-")):
                attributes[ATTR_HEADER_PREFIX + lower] = value
    for header, attribute in mapping.items():
        found = [value for name, value in listed if name.lower() == header.lower()]
        if found:
            attributes[attribute] = found[-1]
    return attributes


def _reveals(value: str, number: str) -> bool:
    digits = normalize_number(number).lstrip("+")
    return bool(number) and (number in value or (len(digits) >= 3 and digits in value))


def merged_media(trunk: SIPInboundTrunkInfo | None, rule: SIPDispatchRuleInfo) -> SIPMediaConfig:
    """The rule's media settings over the trunk's, the legacy ``media_encryption`` fields included.

    Codecs and the media timeout come from the rule when it sets them; encryption is the stronger
    setting when one side disables it, otherwise the rule's.
    """
    merged = SIPMediaConfig()
    for source in (trunk, rule):
        if source is None:
            continue
        media = SIPMediaConfig()
        media.CopyFrom(source.media)
        if not media.HasField("encryption") and source.media_encryption:
            media.encryption = source.media_encryption
        if media.codecs or source is trunk:
            del merged.codecs[:]
            merged.codecs.extend(media.codecs)
            merged.only_listed_codecs = media.only_listed_codecs
        if media.HasField("media_timeout"):
            merged.media_timeout.CopyFrom(media.media_timeout)
        if media.HasField("encryption") and (
            not merged.HasField("encryption") or media.encryption != SIPMediaEncryption.SIP_MEDIA_ENCRYPT_DISABLE
        ):
            merged.encryption = media.encryption
    return merged


def _seconds(trunk: SIPInboundTrunkInfo | None, name: str) -> float | None:
    if trunk is None or not trunk.HasField(name):
        return None
    duration = getattr(trunk, name)
    seconds: float = duration.seconds + duration.nanos / 1e9
    return seconds if seconds > 0 else None


def evaluate_dispatch_rule(
    trunk: SIPInboundTrunkInfo | None,
    rule: SIPDispatchRuleInfo,
    call: InviteFacts,
    answered: bool = False,
    new_suffix: Callable[[], str] = random_suffix,
) -> CallDispatch:
    """Turn the selected rule into the room and participant for ``call``.

    ``answered`` is true when the call was already answered to prompt for a PIN; the participant then
    joins with ``sip.callStatus`` "active" rather than "ringing", as in LiveKit.
    """
    hidden = rule.hide_phone_number
    trunk_id = trunk.sip_trunk_id if trunk is not None else ""
    attributes = dict(rule.attributes)
    attributes[ATTR_CALL_ID] = call.lk_call_id
    attributes[ATTR_TRUNK_ID] = trunk_id
    if not hidden:
        attributes[ATTR_PHONE_NUMBER] = call.calling_number
        attributes[ATTR_HOSTNAME] = call.from_host
        attributes[ATTR_TRUNK_PHONE_NUMBER] = call.called_number
    attributes[ATTR_RULE_ID] = rule.sip_dispatch_rule_id
    for name, value in header_attributes(trunk, call).items():
        if not (hidden and _reveals(value, call.calling_number)):
            attributes[name] = value
    if call.sip_call_id:
        attributes[ATTR_CALL_ID_FULL] = call.sip_call_id
    attributes[ATTR_CALL_STATUS] = STATUS_ACTIVE if answered else STATUS_RINGING

    shown_number = _masked(call.calling_number) if hidden else call.calling_number
    return CallDispatch(
        trunk_id=trunk_id,
        rule_id=rule.sip_dispatch_rule_id,
        room_name=room_name(rule, call.calling_number, call.called_number, new_suffix),
        participant_identity=participant_identity(call.calling_number, hidden),
        participant_name="Phone " + shown_number,
        participant_metadata=rule.metadata,
        participant_attributes=attributes,
        room_preset=rule.room_preset,
        room_config=rule.room_config if rule.HasField("room_config") else None,
        media=merged_media(trunk, rule),
        krisp_enabled=rule.krisp_enabled or (trunk is not None and trunk.krisp_enabled),
        ringing_timeout_seconds=_seconds(trunk, "ringing_timeout"),
        max_call_duration_seconds=_seconds(trunk, "max_call_duration"),
        headers=dict(trunk.headers) if trunk is not None else {},
        attributes_to_headers=dict(trunk.attributes_to_headers) if trunk is not None else {},
    )
