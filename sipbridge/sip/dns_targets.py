"""RFC 3263 §4 as pure decisions: which DNS questions to ask for a SIP URI, and in what order its targets are tried.

The resolver (``resolver``) asks the questions; this module only orders answers: NAPTR records by order and
preference, filtered to the transports we speak; SRV records by priority, and within one priority by a weighted
random draw (RFC 2782); then the default port when no SRV record exists.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

NAPTR_SERVICES = {"SIP+D2U": "UDP", "SIP+D2T": "TCP", "SIPS+D2T": "TLS"}
"""NAPTR services (RFC 3263 §4.1) we can use, and the transport each names."""
SRV_PREFIXES = {"UDP": "_sip._udp", "TCP": "_sip._tcp", "TLS": "_sips._tcp"}
DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061}


@dataclass(frozen=True)
class Naptr:
    order: int
    preference: int
    flags: str
    service: str
    replacement: str


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


def srv_name(transport: str, domain: str) -> str:
    """``_sip._udp.example.com`` and the like: where a transport's SRV records live."""
    return f"{SRV_PREFIXES[transport]}.{domain}"


def naptr_choices(records: Sequence[Naptr], *, secure: bool) -> list[tuple[str, str]]:
    """The (transport, SRV name) pairs NAPTR records point to, best first; only ``s`` flags (SRV follows) and
    services we speak. A ``sips:`` URI may only use TLS (§4.1)."""
    usable = [
        r for r in records
        if r.flags.lower() == "s" and r.service.upper() in NAPTR_SERVICES
        and (not secure or NAPTR_SERVICES[r.service.upper()] == "TLS")
    ]  # fmt: skip
    usable.sort(key=lambda r: (r.order, r.preference))
    return [(NAPTR_SERVICES[r.service.upper()], r.replacement.rstrip(".")) for r in usable]


def fallback_srv_names(domain: str, *, secure: bool) -> list[tuple[str, str]]:
    """Without NAPTR records, SRV queries for each transport we speak (§4.1), in the order LiveKit's service
    would pick them (UDP first); a ``sips:`` URI only TLS."""
    transports = ["TLS"] if secure else ["UDP", "TCP", "TLS"]
    return [(transport, srv_name(transport, domain)) for transport in transports]


def order_srv(records: Sequence[Srv], rng: random.Random) -> list[Srv]:
    """RFC 2782: lowest priority first; within a priority, repeatedly draw one record with a chance in proportion
    to its weight (weight-0 records lead the running sum, as the RFC says, so they are seldom drawn first)."""
    if len(records) == 1 and records[0].target in ("", "."):
        return []  # "." means: the service is decidedly not available at this domain
    ordered: list[Srv] = []
    for priority in sorted({r.priority for r in records}):
        pool = sorted((r for r in records if r.priority == priority), key=lambda r: r.weight)  # weight 0 first
        while pool:
            total = sum(r.weight for r in pool)
            pick = rng.randint(0, total)
            running = 0
            for index, record in enumerate(pool):
                running += record.weight
                if running >= pick:
                    ordered.append(pool.pop(index))
                    break
    return ordered
