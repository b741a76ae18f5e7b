"""allowed_addresses: IPs, CIDR blocks (v4 and v6, edges included) and From host names."""

from __future__ import annotations

import pytest

from dispatch.addresses import address_allowed, mask_problem, parse_address

CASES = [
    # masks, source, from_host, admitted
    ([], "203.0.113.7", "", True),
    ([], "", "", True),
    (["203.0.113.7"], "203.0.113.7", "", True),
    (["203.0.113.7"], "203.0.113.8", "", False),
    (["203.0.113.0/24"], "203.0.113.0", "", True),
    (["203.0.113.0/24"], "203.0.113.255", "", True),
    (["203.0.113.0/24"], "203.0.114.0", "", False),
    (["203.0.113.0/24"], "203.0.112.255", "", False),
    (["203.0.113.7/32"], "203.0.113.7", "", True),
    (["203.0.113.7/32"], "203.0.113.6", "", False),
    (["203.0.113.9/24"], "203.0.113.200", "", True),  # host bits set: still the /24
    (["0.0.0.0/0"], "198.51.100.1", "", True),
    (["0.0.0.0/0"], "2001:db8::1", "", False),
    (["2001:db8::/32"], "2001:db8:ffff::1", "", True),
    (["2001:db8::/32"], "2001:db9::1", "", False),
    (["2001:db8::1"], "2001:db8:0:0::1", "", True),
    (["[2001:db8::1]"], "2001:db8::1", "", True),
    (["[2001:db8::]/64"], "2001:db8::5", "", True),
    (["203.0.113.7"], "::ffff:203.0.113.7", "", True),  # IPv4-mapped source from a dual-stack socket
    (["203.0.113.0/24"], "::ffff:203.0.113.7", "", True),
    (["sip.example.com"], "198.51.100.1", "sip.example.com", True),
    (["sip.example.com"], "198.51.100.1", "SIP.Example.COM", True),
    (["sip.example.com"], "198.51.100.1", "other.example.com", False),
    (["10.0.0.0/8", "sip.example.com"], "203.0.113.7", "sip.example.com", True),
    (["203.0.113.7"], "", "", False),  # unknown source never passes an IP filter
    (["203.0.113.7"], "not-an-ip", "", False),
    (["1.2.3.4, 203.0.113.7"], "203.0.113.7", "", False),  # unusable entry admits nobody
    (["sip://203.0.113.7"], "203.0.113.7", "", False),
    (["10.0.0.0/33"], "10.0.0.1", "", False),
]


@pytest.mark.parametrize(("masks", "source", "host", "admitted"), CASES)
def test_address_allowed(masks: list[str], source: str, host: str, admitted: bool) -> None:
    assert address_allowed(masks, source, host) is admitted


@pytest.mark.parametrize(
    ("mask", "usable"),
    [
        ("1.2.3.4", True),
        ("1.2.3.4/8", True),
        ("[::1]", True),
        ("::/0", True),
        ("some.host.name", True),
        ("", False),
        ("a,b", False),
        ("a b", False),
        ("sip:host;transport=udp", False),
        ("http://x", False),
        ("1.2.3.4/abc", False),
        ("host/8", False),
    ],
)
def test_mask_problem(mask: str, usable: bool) -> None:
    assert (mask_problem(mask) is None) is usable


def test_parse_address() -> None:
    assert str(parse_address("[::1]")) == "::1"
    assert parse_address("example.com") is None
