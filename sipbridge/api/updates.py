"""Field updates of trunks and dispatch rules (the ``update`` action of the Update* methods).

Semantics follow livekit-server: a `ListUpdate` either clears, sets, or removes-then-adds list items (never two of
those at once); optional scalar fields replace the stored value only when present; dispatch-rule attributes merge,
an empty value deleting its key. Everything here is pure: messages in, a new message out, `ValidationError` on bad
input (its message names the field).
"""

from __future__ import annotations

from collections.abc import Callable, MutableSequence, Sequence
from typing import Any, TypeVar, cast

from google.protobuf.message import Message
from livekit.protocol.models import ListUpdate
from livekit.protocol.sip import (
    SIPDispatchRuleInfo,
    SIPDispatchRuleUpdate,
    SIPInboundTrunkInfo,
    SIPInboundTrunkUpdate,
    SIPMediaEncryption,
    SIPOutboundTrunkInfo,
    SIPOutboundTrunkUpdate,
    UpdateSIPDispatchRuleRequest,
    UpdateSIPInboundTrunkRequest,
    UpdateSIPOutboundTrunkRequest,
)

from dispatch.errors import ValidationError

M = TypeVar("M", bound=Message)
WithMedia = SIPInboundTrunkInfo | SIPOutboundTrunkInfo | SIPDispatchRuleInfo
MediaUpdate = SIPInboundTrunkUpdate | SIPOutboundTrunkUpdate | SIPDispatchRuleUpdate
W = TypeVar("W", SIPInboundTrunkInfo, SIPOutboundTrunkInfo, SIPDispatchRuleInfo)

MEDIA_ENCRYPT_DISABLE: int = SIPMediaEncryption.SIP_MEDIA_ENCRYPT_DISABLE


def check_list_update(field: str, update: ListUpdate) -> None:
    changes = len(update.set) + len(update.add) + len(update.remove)
    if not update.clear and not changes:
        raise ValidationError(f"{field}: unsupported list update operation (set, add, remove or clear it)")
    if update.clear and changes:
        raise ValidationError(f"{field}: cannot clear and change the list at the same time")
    if update.set and (update.add or update.remove):
        raise ValidationError(f"{field}: cannot set and change the list at the same time")
    if any(v == "" for v in (*update.set, *update.add, *update.remove)):
        raise ValidationError(f"{field}: empty element in the list")


def apply_list_update(items: MutableSequence[str], update: ListUpdate) -> None:
    """Apply a checked `ListUpdate` to a repeated string field in place."""
    if update.clear:
        del items[:]
        return
    if update.set:
        items[:] = list(update.set)
        return
    result = list(items)
    for value in update.remove:
        if value in result:
            result.remove(value)
    for value in update.add:
        if value not in result:
            result.append(value)
    items[:] = result


def _apply_lists(target: Message, update: Message, fields: Sequence[str]) -> None:
    for name in fields:
        if update.HasField(name):
            change = getattr(update, name)
            check_list_update(name, change)
            apply_list_update(getattr(target, name), change)


def _apply_scalars(target: Message, update: Message, fields: Sequence[str]) -> None:
    for name in fields:
        if update.HasField(name):
            setattr(target, name, getattr(update, name))


def _apply_media(target: WithMedia, update: MediaUpdate) -> None:
    """Replace the media config and/or the legacy encryption field, keeping the two consistent."""
    if update.HasField("media"):
        target.media.CopyFrom(update.media)
    if update.HasField("media_encryption"):
        target.media_encryption = update.media_encryption
    upgrade_media(target)
    if target.HasField("media") and target.media.HasField("encryption"):
        target.media_encryption = target.media.encryption


def upgrade_media(info: WithMedia) -> None:
    """Carry a legacy ``media_encryption`` into ``media.encryption`` when the latter is unset."""
    enc = info.media_encryption
    has_encryption = info.HasField("media") and info.media.HasField("encryption")
    if enc != MEDIA_ENCRYPT_DISABLE and not has_encryption:
        info.media.encryption = enc


def _updated(info: W, update: MediaUpdate, lists: Sequence[str], scalars: Sequence[str]) -> W:
    result = type(info)()
    result.CopyFrom(info)
    _apply_lists(result, update, lists)
    _apply_scalars(result, update, scalars)
    _apply_media(result, update)
    return result


def update_inbound_trunk(info: SIPInboundTrunkInfo, update: SIPInboundTrunkUpdate) -> SIPInboundTrunkInfo:
    return _updated(
        info,
        update,
        lists=("numbers", "allowed_addresses", "allowed_numbers"),
        scalars=("auth_username", "auth_password", "auth_realm", "name", "metadata"),
    )


def update_outbound_trunk(info: SIPOutboundTrunkInfo, update: SIPOutboundTrunkUpdate) -> SIPOutboundTrunkInfo:
    return _updated(
        info,
        update,
        lists=("numbers",),
        scalars=(
            "address",
            "transport",
            "destination_country",
            "auth_username",
            "auth_password",
            "name",
            "metadata",
            "from_host",
        ),
    )


def update_dispatch_rule(info: SIPDispatchRuleInfo, update: SIPDispatchRuleUpdate) -> SIPDispatchRuleInfo:
    result = _updated(info, update, lists=("trunk_ids",), scalars=("name", "metadata"))
    if update.HasField("rule"):
        result.rule.CopyFrom(update.rule)
    for key, value in update.attributes.items():
        if value:
            result.attributes[key] = value
        else:
            result.attributes.pop(key, None)
    return result


def replaced(current_id: str, replacement: M, id_field: str) -> M:
    """The ``replace`` action: the new message wholesale, keeping the stored ID."""
    given = getattr(replacement, id_field)
    if given and given != current_id:
        raise ValidationError(f"{id_field}: the ID in the replacement must be empty or {current_id!r}")
    result = type(replacement)()
    result.CopyFrom(replacement)
    setattr(result, id_field, current_id)
    return result


def apply_action(
    current: W,
    request: UpdateSIPInboundTrunkRequest | UpdateSIPOutboundTrunkRequest | UpdateSIPDispatchRuleRequest,
    update: Callable[[W, Any], W],
    id_field: str,
) -> W:
    """The record after an Update* request's action: ``update`` (field changes) or ``replace`` (whole record)."""
    action = request.WhichOneof("action")
    if action == "update":
        return update(current, request.update)
    if action == "replace":
        return replaced(getattr(request, id_field), cast(W, request.replace), id_field)
    raise ValidationError("action: missing update action (set 'update' or 'replace')")
