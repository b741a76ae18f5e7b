"""Checks the API applies when a trunk or dispatch rule is created or updated.

Field checks follow the ``Validate()`` methods of livekit/protocol's SIP types; conflict checks follow
``sip.ValidateTrunksIter`` and ``sip.ValidateDispatchRulesIter``, which livekit-server runs over the
whole set of trunks or rules as it would be after the change. Both fail with ``invalid_argument``.
A few entries LiveKit accepts but then silently ignores (an unusable ``allowed_addresses`` entry, an
empty number) are rejected here, because ignoring them would widen what a trunk admits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from livekit.protocol.sip import (
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
    SIPMediaConfig,
    SIPOutboundTrunkInfo,
)

from dispatch.addresses import mask_problem
from dispatch.errors import ConflictError, ValidationError
from dispatch.header_rules import header_name_problem, header_value_problem
from dispatch.index import RuleIndex, TrunkIndex, number_keys, rule_keys

MAX_MEDIA_TIMEOUT_SECONDS = 600

R = TypeVar("R", SIPInboundTrunkInfo, SIPDispatchRuleInfo)


def validate_inbound_trunk(trunk: SIPInboundTrunkInfo) -> None:
    """Reject an inbound trunk livekit-server would refuse, or one that would admit more than it says."""
    if not (trunk.auth_username or trunk.auth_password or trunk.allowed_addresses or trunk.numbers):
        raise ValidationError(
            "trunk: for security, one of the fields must be set: "
            "auth_username+auth_password, allowed_addresses or numbers"
        )
    _check_not_empty("trunk.numbers", trunk.numbers)
    _check_not_empty("trunk.allowed_numbers", trunk.allowed_numbers)
    for index, mask in enumerate(trunk.allowed_addresses):
        problem = mask_problem(mask)
        if problem:
            raise ValidationError(f"trunk.allowed_addresses[{index}]: {problem}")
    _check_header_fields("trunk", trunk.headers, trunk.headers_to_attributes, trunk.attributes_to_headers)
    _check_media("trunk.media", trunk.media if trunk.HasField("media") else None)


def validate_outbound_trunk(trunk: SIPOutboundTrunkInfo) -> None:
    """Reject an outbound trunk livekit-server would refuse to store."""
    if not trunk.numbers:
        raise ValidationError("trunk.numbers: no trunk numbers specified")
    _check_not_empty("trunk.numbers", trunk.numbers)
    if not trunk.address:
        raise ValidationError("trunk.address: no outbound address specified")
    _check_host("trunk.address", trunk.address)
    _check_host("trunk.from_host", trunk.from_host)
    _check_header_fields("trunk", trunk.headers, trunk.headers_to_attributes, trunk.attributes_to_headers)
    _check_media("trunk.media", trunk.media if trunk.HasField("media") else None)


def validate_dispatch_rule(rule: SIPDispatchRuleInfo) -> None:
    """Reject a dispatch rule livekit-server would refuse to store."""
    if not rule.HasField("rule") or rule.rule.WhichOneof("rule") is None:
        raise ValidationError(
            "dispatch_rule.rule: missing rule (one of dispatchRuleDirect, dispatchRuleIndividual, dispatchRuleCallee)"
        )
    for field, values in (
        ("trunk_ids", rule.trunk_ids),
        ("inbound_numbers", rule.inbound_numbers),
        ("numbers", rule.numbers),
    ):
        _check_not_empty(f"dispatch_rule.{field}", values)
    _check_media("dispatch_rule.media", rule.media if rule.HasField("media") else None)


def _check_not_empty(field: str, values: Sequence[str]) -> None:
    for index, value in enumerate(values):
        if not value:
            raise ValidationError(f"{field}[{index}]: empty element in the list")


def _check_host(field: str, value: str) -> None:
    if "transport=" in value:
        raise ValidationError(f"{field}: should not contain a transport parameter")
    if "@" in value or ";" in value or value.startswith(("sip:", "sips:")):
        raise ValidationError(f"{field}: should be a host name or IP address, not a SIP URI")


def _check_header_fields(
    prefix: str,
    headers: Mapping[str, str],
    headers_to_attributes: Mapping[str, str],
    attributes_to_headers: Mapping[str, str],
) -> None:
    for name in sorted(headers):
        problem = header_name_problem(name, reserved_forbidden=True) or header_value_problem(name, headers[name])
        if problem:
            raise ValidationError(f"{prefix}.headers: {problem}")
    for name in sorted(headers_to_attributes):
        problem = header_name_problem(name, reserved_forbidden=False)
        if problem:
            raise ValidationError(f"{prefix}.headers_to_attributes: {problem}")
    for attribute in sorted(attributes_to_headers):
        problem = header_name_problem(attributes_to_headers[attribute], reserved_forbidden=False)
        if problem:
            raise ValidationError(f"{prefix}.attributes_to_headers[{attribute!r}]: {problem}")


def _check_media(field: str, media: SIPMediaConfig | None) -> None:
    if media is None:
        return
    for index, codec in enumerate(media.codecs):
        if not codec.name:
            raise ValidationError(f"{field}.codecs[{index}]: missing codec name")
        if any(c in codec.name for c in " \t\n\r"):
            raise ValidationError(f"{field}.codecs[{index}]: invalid codec name {codec.name!r}")
        if "/" in codec.name:
            raise ValidationError(f"{field}.codecs[{index}]: codec name must not contain '/'")
    if media.HasField("media_timeout"):
        seconds = media.media_timeout.seconds + media.media_timeout.nanos / 1e9
        if seconds < 0:
            raise ValidationError(f"{field}.media_timeout: must not be negative")
        if seconds > MAX_MEDIA_TIMEOUT_SECONDS:
            raise ValidationError(f"{field}.media_timeout: must not exceed 10m0s")


def _label(object_id: str) -> str:
    return object_id or "<new>"


class _ConflictIndex(Protocol[R]):
    def conflict(self, record: R) -> R | None: ...

    def put(self, record: R) -> None: ...


def _file_without_conflict(
    index: _ConflictIndex[R], records: Sequence[R], error: Callable[[R, R], ConflictError]
) -> None:
    """File ``records`` one by one; the first that conflicts with one filed before raises ``error(filed, it)``.
    Trunks and rules are checked this one way, each by its own index."""
    for record in records:
        other = index.conflict(record)
        if other is not None:
            raise error(other, record)
        index.put(record)


def check_inbound_trunk_conflicts(trunks: Sequence[SIPInboundTrunkInfo]) -> None:
    """Reject a set of inbound trunks in which two trunks would accept the same call equally well.

    Two trunks conflict when they share a called number (or both accept any called number) and also
    share an allowed calling number (or both accept any caller).
    """
    _file_without_conflict(TrunkIndex(), trunks, trunk_conflict)


def trunk_conflict(other: SIPInboundTrunkInfo, trunk: SIPInboundTrunkInfo) -> ConflictError:
    """The error for two conflicting trunks, naming both and one call both would take."""
    called = min(number_keys(other.numbers) & number_keys(trunk.numbers))
    calling = min(number_keys(other.allowed_numbers) & number_keys(trunk.allowed_numbers))
    return ConflictError(
        f"conflicting inbound SIP trunks {_label(other.sip_trunk_id)!r} and "
        f"{_label(trunk.sip_trunk_id)!r}: both accept calls to "
        f"{called or 'any number'} from {calling or 'any caller'}"
        + ("" if calling else " (set allowed_numbers on one of them to tell them apart)"),
        other.sip_trunk_id,
        trunk.sip_trunk_id,
    )


def check_dispatch_rule_conflicts(rules: Sequence[SIPDispatchRuleInfo]) -> None:
    """Reject a set of dispatch rules in which two rules would claim the same call.

    Two rules conflict when they have the same PIN and share a trunk (or both apply to every trunk),
    a calling number (or both accept any caller) and a called number (or both accept any number).
    """
    _file_without_conflict(RuleIndex(), rules, rule_conflict)


def rule_conflict(other: SIPDispatchRuleInfo, rule: SIPDispatchRuleInfo) -> ConflictError:
    """The error for two conflicting rules, naming both and one call both would claim."""
    pin, trunks, calling, called = rule_keys(rule)
    _, other_trunks, other_calling, other_called = rule_keys(other)
    trunk_id, caller, number = min(trunks & other_trunks), min(calling & other_calling), min(called & other_called)
    return ConflictError(
        f"conflicting dispatch rules {_label(other.sip_dispatch_rule_id)!r} ({other.name!r}) and "
        f"{_label(rule.sip_dispatch_rule_id)!r} ({rule.name!r}): both apply to "
        f"{'trunk ' + repr(trunk_id) if trunk_id else 'every trunk'}, "
        f"calls from {caller or 'any caller'} to {number or 'any number'}, "
        f"{'PIN ' + repr(pin) if pin else 'no PIN'}",
        other.sip_dispatch_rule_id,
        rule.sip_dispatch_rule_id,
    )
