"""Legacy SIPTrunkInfo seen as inbound and outbound trunks, as livekit-server lists them."""

from __future__ import annotations

from livekit.protocol.sip import SIPInboundTrunkInfo, SIPOutboundTrunkInfo, SIPTransport, SIPTrunkInfo

from dispatch.legacy import (
    inbound_to_legacy,
    inbound_views,
    legacy_to_inbound,
    legacy_to_outbound,
    outbound_to_legacy,
    outbound_views,
)

LEGACY = SIPTrunkInfo(
    sip_trunk_id="ST_legacy",
    name="old",
    metadata="m",
    inbound_addresses=["203.0.113.0/24"],
    outbound_address="sip.example.com",
    outbound_number="+15105550100",
    transport=SIPTransport.SIP_TRANSPORT_TCP,
    inbound_numbers=["+13105550100"],
    inbound_username="in-user",
    inbound_password="in-pass",
    outbound_username="out-user",
    outbound_password="out-pass",
)


def test_inbound_view() -> None:
    assert legacy_to_inbound(LEGACY) == SIPInboundTrunkInfo(
        sip_trunk_id="ST_legacy",
        name="old",
        metadata="m",
        numbers=["+15105550100"],
        allowed_addresses=["203.0.113.0/24"],
        allowed_numbers=["+13105550100"],
        auth_username="in-user",
        auth_password="in-pass",
    )


def test_outbound_view() -> None:
    assert legacy_to_outbound(LEGACY) == SIPOutboundTrunkInfo(
        sip_trunk_id="ST_legacy",
        name="old",
        metadata="m",
        address="sip.example.com",
        transport=SIPTransport.SIP_TRANSPORT_TCP,
        numbers=["+15105550100"],
        auth_username="out-user",
        auth_password="out-pass",
    )


def test_trunk_without_number_has_no_numbers() -> None:
    trunk = SIPTrunkInfo(sip_trunk_id="ST_x")
    assert list(legacy_to_inbound(trunk).numbers) == []
    assert list(legacy_to_outbound(trunk).numbers) == []


def test_views_respect_the_kind() -> None:
    both = SIPTrunkInfo(sip_trunk_id="both", kind=SIPTrunkInfo.TrunkKind.TRUNK_LEGACY)
    inbound = SIPTrunkInfo(sip_trunk_id="in", kind=SIPTrunkInfo.TrunkKind.TRUNK_INBOUND)
    outbound = SIPTrunkInfo(sip_trunk_id="out", kind=SIPTrunkInfo.TrunkKind.TRUNK_OUTBOUND)
    assert [t.sip_trunk_id for t in inbound_views([both, inbound, outbound])] == ["both", "in"]
    assert [t.sip_trunk_id for t in outbound_views([both, inbound, outbound])] == ["both", "out"]


def test_new_trunks_in_the_legacy_shape() -> None:
    inbound = SIPInboundTrunkInfo(sip_trunk_id="ST_i", numbers=["+1", "+2"], allowed_numbers=["+3"], auth_username="u")
    legacy = inbound_to_legacy(inbound)
    assert legacy.kind == SIPTrunkInfo.TrunkKind.TRUNK_INBOUND and legacy.outbound_number == "+1"
    assert list(legacy.inbound_numbers) == ["+3"] and legacy.inbound_username == "u"
    outbound = SIPOutboundTrunkInfo(sip_trunk_id="ST_o", address="h", numbers=["+4"], auth_password="p")
    legacy = outbound_to_legacy(outbound)
    assert legacy.kind == SIPTrunkInfo.TrunkKind.TRUNK_OUTBOUND and legacy.outbound_address == "h"
    assert legacy.outbound_number == "+4" and legacy.outbound_password == "p"
    assert legacy_to_outbound(legacy) == outbound
    assert inbound_to_legacy(SIPInboundTrunkInfo()).outbound_number == ""
