"""The deprecated ``SIPTrunkInfo`` seen as the new inbound and outbound trunk types.

livekit-server still stores legacy trunks (Redis hash ``sip_trunk``) and lists them among inbound
and outbound trunks after converting them field by field; a legacy trunk of kind ``TRUNK_LEGACY``
serves both directions, ``TRUNK_INBOUND`` / ``TRUNK_OUTBOUND`` only one. The deprecated
``ListSIPTrunk`` goes the other way and shows new trunks in the legacy shape.
"""

from __future__ import annotations

from collections.abc import Iterable

from livekit.protocol.sip import SIPInboundTrunkInfo, SIPOutboundTrunkInfo, SIPTrunkInfo


def serves_inbound(trunk: SIPTrunkInfo) -> bool:
    """Whether livekit-server lists this legacy trunk among inbound trunks."""
    return trunk.kind != SIPTrunkInfo.TrunkKind.TRUNK_OUTBOUND


def serves_outbound(trunk: SIPTrunkInfo) -> bool:
    """Whether livekit-server lists this legacy trunk among outbound trunks."""
    return trunk.kind != SIPTrunkInfo.TrunkKind.TRUNK_INBOUND


def legacy_to_inbound(trunk: SIPTrunkInfo) -> SIPInboundTrunkInfo:
    """The inbound view of a legacy trunk: its ``outbound_number`` is the number it answers."""
    return SIPInboundTrunkInfo(
        sip_trunk_id=trunk.sip_trunk_id,
        name=trunk.name,
        metadata=trunk.metadata,
        numbers=[trunk.outbound_number] if trunk.outbound_number else [],
        allowed_addresses=list(trunk.inbound_addresses),
        allowed_numbers=list(trunk.inbound_numbers),
        auth_username=trunk.inbound_username,
        auth_password=trunk.inbound_password,
    )


def legacy_to_outbound(trunk: SIPTrunkInfo) -> SIPOutboundTrunkInfo:
    """The outbound view of a legacy trunk."""
    return SIPOutboundTrunkInfo(
        sip_trunk_id=trunk.sip_trunk_id,
        name=trunk.name,
        metadata=trunk.metadata,
        address=trunk.outbound_address,
        transport=trunk.transport,
        numbers=[trunk.outbound_number] if trunk.outbound_number else [],
        auth_username=trunk.outbound_username,
        auth_password=trunk.outbound_password,
    )


def inbound_to_legacy(trunk: SIPInboundTrunkInfo) -> SIPTrunkInfo:
    """An inbound trunk as the deprecated ``ListSIPTrunk`` shows it (its first number only)."""
    return SIPTrunkInfo(
        sip_trunk_id=trunk.sip_trunk_id,
        kind=SIPTrunkInfo.TrunkKind.TRUNK_INBOUND,
        name=trunk.name,
        metadata=trunk.metadata,
        outbound_number=trunk.numbers[0] if trunk.numbers else "",
        inbound_addresses=list(trunk.allowed_addresses),
        inbound_numbers=list(trunk.allowed_numbers),
        inbound_username=trunk.auth_username,
        inbound_password=trunk.auth_password,
    )


def outbound_to_legacy(trunk: SIPOutboundTrunkInfo) -> SIPTrunkInfo:
    """An outbound trunk as the deprecated ``ListSIPTrunk`` shows it (its first number only)."""
    return SIPTrunkInfo(
        sip_trunk_id=trunk.sip_trunk_id,
        kind=SIPTrunkInfo.TrunkKind.TRUNK_OUTBOUND,
        name=trunk.name,
        metadata=trunk.metadata,
        outbound_address=trunk.address,
        transport=trunk.transport,
        outbound_number=trunk.numbers[0] if trunk.numbers else "",
        outbound_username=trunk.auth_username,
        outbound_password=trunk.auth_password,
    )


def inbound_views(trunks: Iterable[SIPTrunkInfo]) -> list[SIPInboundTrunkInfo]:
    """Inbound views of the legacy trunks that serve inbound calls."""
    return [legacy_to_inbound(t) for t in trunks if serves_inbound(t)]


def outbound_views(trunks: Iterable[SIPTrunkInfo]) -> list[SIPOutboundTrunkInfo]:
    """Outbound views of the legacy trunks that serve outbound calls."""
    return [legacy_to_outbound(t) for t in trunks if serves_outbound(t)]
