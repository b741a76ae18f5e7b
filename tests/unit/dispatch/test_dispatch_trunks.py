"""Trunk matching: numbers (+/no +), allowed numbers, addresses, specificity, ties, digest auth."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from livekit.protocol.sip import SIPInboundTrunkInfo

from dispatch.call import InviteFacts
from dispatch.errors import ConflictError
from dispatch.trunks import TrunkVerdict, match_trunk
from dispatch.validate import check_inbound_trunk_conflicts

TO = "+15105550100"
FROM = "+13105550100"
SRC = "203.0.113.7"


def T(trunk_id: str, **fields: Any) -> SIPInboundTrunkInfo:
    return SIPInboundTrunkInfo(sip_trunk_id=trunk_id, **fields)


def call(to: str = TO, frm: str = FROM, src: str = SRC, host: str = "", auth: str | None = None) -> InviteFacts:
    return InviteFacts(called_number=to, calling_number=frm, source_ip=src, from_host=host, auth_username=auth)


CASES: list[tuple[str, list[SIPInboundTrunkInfo], InviteFacts, TrunkVerdict, str | None]] = [
    ("no trunks", [], call(), TrunkVerdict.NO_TRUNKS_DEFINED, None),
    ("catch-all trunk", [T("a", allowed_addresses=[SRC])], call(), TrunkVerdict.ACCEPT, "a"),
    ("number", [T("a", numbers=[TO])], call(), TrunkVerdict.ACCEPT, "a"),
    ("number, Telnyx form called", [T("a", numbers=[TO])], call(to=TO[1:]), TrunkVerdict.ACCEPT, "a"),
    ("number stored without +", [T("a", numbers=[TO[1:]])], call(), TrunkVerdict.ACCEPT, "a"),
    ("number with punctuation", [T("a", numbers=["+1 (510) 555-0100"])], call(), TrunkVerdict.ACCEPT, "a"),
    ("other number", [T("a", numbers=["+15105550199"])], call(), TrunkVerdict.NO_TRUNK, None),
    ("second of two", [T("a", numbers=["+1999"]), T("b", numbers=[TO])], call(), TrunkVerdict.ACCEPT, "b"),
    ("specific beats catch-all", [T("a", auth_username="u"), T("b", numbers=[TO])], call(), TrunkVerdict.ACCEPT, "b"),
    (
        "caller-restricted beats unrestricted on same number",
        [T("a", numbers=[TO]), T("b", numbers=[TO], allowed_numbers=[FROM])],
        call(),
        TrunkVerdict.ACCEPT,
        "b",
    ),
    (
        "restricted trunk skipped for other callers",
        [T("a", numbers=[TO]), T("b", numbers=[TO], allowed_numbers=["+1999"])],
        call(),
        TrunkVerdict.ACCEPT,
        "a",
    ),
    ("two trunks same number", [T("a", numbers=[TO]), T("b", numbers=[TO[1:]])], call(), TrunkVerdict.AMBIGUOUS, None),
    ("two catch-alls", [T("a", auth_username="u"), T("b", auth_username="v")], call(), TrunkVerdict.AMBIGUOUS, None),
    (
        "two catch-alls, one filtered out",
        [T("a", allowed_addresses=["198.51.100.0/24"]), T("b", allowed_addresses=[SRC])],
        call(),
        TrunkVerdict.ACCEPT,
        "b",
    ),
    ("allowed caller", [T("a", numbers=[TO], allowed_numbers=[FROM[1:]])], call(), TrunkVerdict.ACCEPT, "a"),
    ("caller not allowed", [T("a", numbers=[TO], allowed_numbers=["+1999"])], call(), TrunkVerdict.NO_TRUNK, None),
    (
        "CIDR low edge",
        [T("a", allowed_addresses=["203.0.113.0/24"])],
        call(src="203.0.113.0"),
        TrunkVerdict.ACCEPT,
        "a",
    ),
    (
        "CIDR high edge",
        [T("a", allowed_addresses=["203.0.113.0/24"])],
        call(src="203.0.113.255"),
        TrunkVerdict.ACCEPT,
        "a",
    ),
    (
        "CIDR just out",
        [T("a", allowed_addresses=["203.0.113.0/24"])],
        call(src="203.0.114.0"),
        TrunkVerdict.NO_TRUNK,
        None,
    ),
    ("IPv6 CIDR", [T("a", allowed_addresses=["2001:db8::/32"])], call(src="2001:db8::7"), TrunkVerdict.ACCEPT, "a"),
    ("IPv6 out", [T("a", allowed_addresses=["2001:db8::/32"])], call(src="2001:db9::7"), TrunkVerdict.NO_TRUNK, None),
    (
        "host name",
        [T("a", allowed_addresses=["sip.twilio.com"])],
        call(host="sip.twilio.com"),
        TrunkVerdict.ACCEPT,
        "a",
    ),
    ("unusable address list admits nobody", [T("a", allowed_addresses=["a, b"])], call(), TrunkVerdict.NO_TRUNK, None),
    (
        "auth required",
        [T("a", numbers=[TO], auth_username="u", auth_password="p")],
        call(),
        TrunkVerdict.AUTH_REQUIRED,
        "a",
    ),
    ("user name only still requires auth", [T("a", auth_username="u")], call(), TrunkVerdict.AUTH_REQUIRED, "a"),
    ("credentials presented", [T("a", auth_username="u", auth_password="p")], call(auth="u"), TrunkVerdict.ACCEPT, "a"),
    ("unknown user", [T("a", auth_username="u", auth_password="p")], call(auth="x"), TrunkVerdict.AUTH_FAILED, "a"),
    ("credentials not needed", [T("a", numbers=[TO])], call(auth="x"), TrunkVerdict.ACCEPT, "a"),
]


@pytest.mark.parametrize(("name", "trunks", "the_call", "verdict", "trunk_id"), CASES, ids=[c[0] for c in CASES])
def test_match_trunk(
    name: str, trunks: list[SIPInboundTrunkInfo], the_call: InviteFacts, verdict: TrunkVerdict, trunk_id: str | None
) -> None:
    match = match_trunk(trunks, the_call)
    assert match.verdict is verdict, match.reason
    assert (match.trunk.sip_trunk_id if match.trunk else None) == trunk_id
    assert len(match.considered) == len(trunks)


def test_status_codes_and_credentials() -> None:
    trunk = T("a", auth_username="u", auth_password="p", auth_realm="example.com")
    challenge = match_trunk([trunk], call())
    assert challenge.sip_status == 401
    assert challenge.credentials is not None and challenge.credentials.realm == "example.com"
    verify = match_trunk([trunk], call(auth="u"))
    assert verify.sip_status == 200 and verify.credentials == challenge.credentials
    assert match_trunk([trunk], call(auth="x")).credentials is None
    assert match_trunk([T("b", numbers=["+1"])], call()).sip_status == 404


def test_reasons_name_every_failed_filter() -> None:
    trunk = T("a", numbers=["+1999"], allowed_numbers=["+1888"], allowed_addresses=["10.0.0.0/8"])
    (considered,) = match_trunk([trunk], call()).considered
    assert not considered.admitted
    text = " ".join(considered.reasons)
    assert "allowed_numbers" in text and "allowed_addresses" in text and "not in numbers" in text


numbers_pool = st.sampled_from([TO, TO[1:], "+15105550199", FROM, FROM[1:], "+17145550100"])
trunk_strategy = st.builds(
    lambda i, numbers, allowed: T(f"t{i}", numbers=numbers, allowed_numbers=allowed, auth_username="u"),
    st.integers(0, 10**6),
    st.lists(numbers_pool, max_size=2),
    st.lists(numbers_pool, max_size=2),
)


@given(
    trunks=st.lists(trunk_strategy, max_size=4, unique_by=lambda t: t.sip_trunk_id),
    to=numbers_pool,
    frm=numbers_pool,
)
def test_trunks_accepted_by_the_api_never_tie(trunks: list[SIPInboundTrunkInfo], to: str, frm: str) -> None:
    try:
        check_inbound_trunk_conflicts(trunks)
    except ConflictError:
        assume(False)
    match = match_trunk(trunks, call(to=to, frm=frm, auth="u"))
    assert match.verdict is not TrunkVerdict.AMBIGUOUS


def test_a_call_over_a_registration_is_taken_by_its_trunk_alone_whatever_its_source() -> None:
    from dataclasses import replace

    from dispatch.index import TrunkIndex

    registrar_relayed = replace(call(src="192.0.2.50"), registered_trunk_id="reg")
    trunks = [T("reg", allowed_addresses=["198.51.100.0/24"]), T("other", numbers=[TO])]
    for given_trunks in (trunks, TrunkIndex(trunks)):
        match = match_trunk(given_trunks, registrar_relayed)
        assert (match.verdict, match.trunk and match.trunk.sip_trunk_id) == (TrunkVerdict.ACCEPT, "reg")
    # Its other filters still apply, and a missing trunk refuses the call.
    picky = [T("reg", numbers=["+19995550100"])]
    assert match_trunk(picky, registrar_relayed).verdict is TrunkVerdict.NO_TRUNK
    missing = match_trunk([T("other")], replace(registrar_relayed, registered_trunk_id="gone"))
    assert missing.verdict is TrunkVerdict.NO_TRUNK and "'gone' does not exist" in missing.reason
    # Digest credentials of the trunk are still asked for.
    assert match_trunk([T("reg", auth_username="u")], registrar_relayed).verdict is TrunkVerdict.AUTH_REQUIRED
