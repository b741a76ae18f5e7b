"""Field updates and list filters of the SIP API, as livekit-server applies them."""

from __future__ import annotations

import pytest
from livekit.protocol.models import ListUpdate, Pagination
from livekit.protocol.sip import (
    ListSIPDispatchRuleRequest,
    ListSIPInboundTrunkRequest,
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleInfo,
    SIPDispatchRuleUpdate,
    SIPInboundTrunkInfo,
    SIPInboundTrunkUpdate,
    SIPMediaEncryption,
    SIPOutboundTrunkInfo,
    SIPOutboundTrunkUpdate,
    SIPTransport,
)

from dispatch.errors import ValidationError
from sipbridge.api import listing
from sipbridge.api.updates import replaced, update_dispatch_rule, update_inbound_trunk, update_outbound_trunk

TRUNK = SIPInboundTrunkInfo(sip_trunk_id="ST_1", name="old", numbers=["+1", "+2"], allowed_numbers=["+9"], metadata="m")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (ListUpdate(set=["+5"]), ["+5"]),
        (ListUpdate(add=["+3", "+1"]), ["+1", "+2", "+3"]),
        (ListUpdate(remove=["+1"]), ["+2"]),
        (ListUpdate(remove=["+1"], add=["+4"]), ["+2", "+4"]),
        (ListUpdate(clear=True), []),
    ],
)
def test_list_updates(change: ListUpdate, expected: list[str]) -> None:
    updated = update_inbound_trunk(TRUNK, SIPInboundTrunkUpdate(numbers=change))
    assert list(updated.numbers) == expected
    assert list(updated.allowed_numbers) == ["+9"]  # untouched
    assert list(TRUNK.numbers) == ["+1", "+2"]  # the stored message is not modified


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (ListUpdate(), "numbers: unsupported list update operation"),
        (ListUpdate(clear=True, add=["+1"]), "numbers: cannot clear and change"),
        (ListUpdate(set=["+1"], remove=["+2"]), "numbers: cannot set and change"),
        (ListUpdate(add=[""]), "numbers: empty element"),
    ],
)
def test_bad_list_updates_name_the_field(change: ListUpdate, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        update_inbound_trunk(TRUNK, SIPInboundTrunkUpdate(numbers=change))


def test_scalar_fields_change_only_when_present() -> None:
    updated = update_inbound_trunk(TRUNK, SIPInboundTrunkUpdate(name="new", auth_username="u", auth_password="p"))
    assert (updated.name, updated.metadata, updated.auth_username, updated.auth_password) == ("new", "m", "u", "p")
    cleared = update_inbound_trunk(TRUNK, SIPInboundTrunkUpdate(metadata=""))
    assert cleared.metadata == "" and cleared.name == "old"


def test_outbound_update_and_media_encryption_kept_consistent() -> None:
    trunk = SIPOutboundTrunkInfo(sip_trunk_id="ST_o", address="sip.example.com", numbers=["+1"])
    updated = update_outbound_trunk(
        trunk,
        SIPOutboundTrunkUpdate(
            transport=SIPTransport.SIP_TRANSPORT_TCP,
            media_encryption=SIPMediaEncryption.SIP_MEDIA_ENCRYPT_REQUIRE,
        ),
    )
    assert updated.transport == SIPTransport.SIP_TRANSPORT_TCP
    assert updated.address == "sip.example.com"
    assert updated.media_encryption == SIPMediaEncryption.SIP_MEDIA_ENCRYPT_REQUIRE
    assert updated.media.encryption == SIPMediaEncryption.SIP_MEDIA_ENCRYPT_REQUIRE


def test_dispatch_rule_attributes_merge_and_empty_value_deletes() -> None:
    rule = SIPDispatchRuleInfo(
        sip_dispatch_rule_id="SDR_1",
        rule=SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name="a")),
        attributes={"keep": "1", "drop": "2"},
        trunk_ids=["ST_1"],
    )
    updated = update_dispatch_rule(
        rule,
        SIPDispatchRuleUpdate(
            attributes={"drop": "", "new": "3"},
            trunk_ids=ListUpdate(add=["ST_2"]),
            rule=SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name="b", pin="12")),
        ),
    )
    assert dict(updated.attributes) == {"keep": "1", "new": "3"}
    assert list(updated.trunk_ids) == ["ST_1", "ST_2"]
    assert updated.rule.dispatch_rule_direct.room_name == "b"


def test_replace_keeps_the_id_and_rejects_another() -> None:
    new = replaced("ST_1", SIPInboundTrunkInfo(name="fresh", numbers=["+7"]), "sip_trunk_id")
    assert (new.sip_trunk_id, new.name) == ("ST_1", "fresh")
    with pytest.raises(ValidationError, match="sip_trunk_id"):
        replaced("ST_1", SIPInboundTrunkInfo(sip_trunk_id="ST_2"), "sip_trunk_id")


def test_list_filters_and_pages() -> None:
    trunks = [  # in ID order, as the store hands them out
        SIPInboundTrunkInfo(sip_trunk_id="ST_a", numbers=["+14155550100"]),
        SIPInboundTrunkInfo(sip_trunk_id="ST_b", allowed_addresses=["10.0.0.1"]),  # no numbers: matches any
        SIPInboundTrunkInfo(sip_trunk_id="ST_c", numbers=["+15105550100"]),
    ]
    ids = lambda items: [t.sip_trunk_id for t in items]  # noqa: E731
    assert ids(listing.list_trunks(trunks, ListSIPInboundTrunkRequest())) == ["ST_a", "ST_b", "ST_c"]
    assert ids(listing.list_trunks(trunks, ListSIPInboundTrunkRequest(numbers=["15105550100"]))) == ["ST_b", "ST_c"]
    assert ids(listing.list_trunks(trunks, ListSIPInboundTrunkRequest(trunk_ids=["ST_c", "ST_x"]))) == ["ST_c"]
    page = ListSIPInboundTrunkRequest(page=Pagination(after_id="ST_a", limit=1))
    assert ids(listing.list_trunks(trunks, page)) == ["ST_b"]


def test_rule_list_by_trunk_keeps_rules_for_every_trunk() -> None:
    rules = [
        SIPDispatchRuleInfo(sip_dispatch_rule_id="SDR_1", trunk_ids=["ST_1"]),
        SIPDispatchRuleInfo(sip_dispatch_rule_id="SDR_2", trunk_ids=["ST_2"]),
        SIPDispatchRuleInfo(sip_dispatch_rule_id="SDR_3"),
    ]
    listed = listing.list_rules(rules, ListSIPDispatchRuleRequest(trunk_ids=["ST_1"]))
    assert [r.sip_dispatch_rule_id for r in listed] == ["SDR_1", "SDR_3"]
    by_id = listing.list_rules(rules, ListSIPDispatchRuleRequest(dispatch_rule_ids=["SDR_2"]))
    assert [r.sip_dispatch_rule_id for r in by_id] == ["SDR_2"]
