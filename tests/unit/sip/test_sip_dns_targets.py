"""RFC 3263 ordering (NAPTR, SRV by priority and weight) and the resolver's TTL cache, without a DNS server."""

from __future__ import annotations

import random
from collections import Counter

from sipbridge.sip.dns_targets import Naptr, Srv, fallback_srv_names, naptr_choices, order_srv
from sipbridge.sip.resolver import TtlCache


def test_naptr_records_are_ordered_and_filtered_to_what_we_speak() -> None:
    records = [
        Naptr(50, 50, "s", "SIP+D2U", "_sip._udp.example.com."),
        Naptr(10, 90, "s", "SIPS+D2T", "_sips._tcp.example.com."),
        Naptr(10, 10, "s", "SIP+D2T", "_sip._tcp.example.com."),
        Naptr(5, 5, "s", "SIP+D2S", "_sip._sctp.example.com."),  # SCTP: not ours
        Naptr(1, 1, "u", "SIP+D2U", "!^.*$!sip:x@y!"),  # not an SRV pointer
    ]
    assert naptr_choices(records, secure=False) == [
        ("TCP", "_sip._tcp.example.com"),
        ("TLS", "_sips._tcp.example.com"),
        ("UDP", "_sip._udp.example.com"),
    ]
    assert naptr_choices(records, secure=True) == [("TLS", "_sips._tcp.example.com")]


def test_without_naptr_each_transport_is_asked_for_srv() -> None:
    assert fallback_srv_names("example.com", secure=False) == [
        ("UDP", "_sip._udp.example.com"),
        ("TCP", "_sip._tcp.example.com"),
        ("TLS", "_sips._tcp.example.com"),
    ]
    assert fallback_srv_names("example.com", secure=True) == [("TLS", "_sips._tcp.example.com")]


def test_srv_priority_first_then_weight_decides_who_leads() -> None:
    records = [Srv(20, 0, 5062, "backup"), Srv(10, 90, 5060, "big"), Srv(10, 10, 5061, "small")]
    leaders: Counter[str] = Counter()
    rng = random.Random(7)
    for _ in range(2000):
        ordered = order_srv(records, rng)
        assert ordered[-1].target == "backup"  # a higher priority value is only tried last
        assert {r.target for r in ordered} == {"big", "small", "backup"}
        leaders[ordered[0].target] += 1
    assert 0.85 < leaders["big"] / 2000 < 0.95  # weight 90 of 100


def test_a_lone_dot_target_means_no_service() -> None:
    assert order_srv([Srv(0, 0, 0, "")], random.Random(1)) == []


def test_cache_keeps_an_answer_for_its_ttl() -> None:
    now = [100.0]
    cache = TtlCache(clock=lambda: now[0])
    cache.put("_sip._udp.example.com", "SRV", [Srv(1, 1, 5060, "a")], 30.0)
    now[0] = 129.9
    assert cache.get("_sip._udp.example.com", "SRV") == [Srv(1, 1, 5060, "a")]
    now[0] = 130.0
    assert cache.get("_sip._udp.example.com", "SRV") is None
