"""RFC 3263 resolution of a SIP URI to the addresses to try, in order: NAPTR → SRV → A/AAAA, through dnspython.

Answers are cached for their TTL (negative answers for ``NEGATIVE_TTL``), so a busy trunk costs one lookup per
TTL, not one per call. ``dns_targets`` decides the order; this module only asks DNS.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.resolver

from sipbridge.netaddr import is_ip

from .dns_targets import DEFAULT_PORTS, Naptr, Srv, fallback_srv_names, naptr_choices, order_srv, srv_name
from .transaction import Address
from .uri import SipUri

log = logging.getLogger(__name__)

NEGATIVE_TTL = 30.0
"""Seconds a name that does not exist (or has no record of a type) is remembered as such."""
MAX_TARGETS = 16
LOOKUP_LIFETIME = 4.0
"""Seconds one DNS question may take, retries included."""

Record = Naptr | Srv | str


class TtlCache:
    """DNS answers by (name, type) until their TTL runs out."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[float, list[Record]]] = {}

    def get(self, name: str, rdtype: str) -> list[Record] | None:
        entry = self._entries.get((name, rdtype))
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[(name, rdtype)]
            return None
        return entry[1]

    def put(self, name: str, rdtype: str, records: list[Record], ttl: float) -> None:
        self._entries[(name, rdtype)] = (self._clock() + ttl, records)


class SipResolver:
    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]] = (),
        *,
        cache: TtlCache | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """``nameservers``: (address, port) pairs; none means the system's (``/etc/resolv.conf``), with A/AAAA
        then answered by the system resolver (so ``/etc/hosts`` counts)."""
        self._custom = bool(nameservers)
        self._dns = dns.asyncresolver.Resolver(configure=not nameservers)
        if nameservers:
            self._dns.nameservers = [host for host, _ in nameservers]
            self._dns.port = nameservers[0][1]
        self.cache = cache or TtlCache()
        self._rng = rng or random.Random()

    async def resolve(self, uri: SipUri, transport: str | None = None) -> list[Address]:
        """The addresses to try for ``uri``, best first; ``transport`` (UDP/TCP/TLS) is the trunk's choice, None
        for automatic. A transport parameter in the URI wins; ``sips:`` means TLS. Empty when nothing resolves."""
        secure = uri.scheme == "sips"
        chosen = (uri.params.get("transport") or "").upper() or transport
        if secure:
            chosen = "TLS"
        host = uri.host.strip("[]")
        if is_ip(host):
            transport_name = chosen or "UDP"
            return [Address(transport_name, host, uri.port or DEFAULT_PORTS.get(transport_name, 5060))]
        if uri.port is not None:  # §4.2: an explicit port means no SRV
            transport_name = chosen or "UDP"
            return [Address(transport_name, ip, uri.port, host) for ip in await self._addresses(host)]
        if chosen is not None:
            choices = [(chosen, srv_name(chosen, host))] if chosen in DEFAULT_PORTS else []
        else:
            naptr = [r for r in await self._lookup(host, "NAPTR") if isinstance(r, Naptr)]
            choices = naptr_choices(naptr, secure=secure) or fallback_srv_names(host, secure=secure)
        targets: list[Address] = []
        for transport_name, name in choices:
            records = [r for r in await self._lookup(name, "SRV") if isinstance(r, Srv)]
            for srv in order_srv(records, self._rng):
                for ip in await self._addresses(srv.target):
                    targets.append(Address(transport_name, ip, srv.port, host))
        if not targets:  # §4.2: no SRV records: the host itself, at the transport's default port
            transport_name = chosen or ("TLS" if secure else "UDP")
            targets = [Address(transport_name, ip, DEFAULT_PORTS[transport_name], host)
                       for ip in await self._addresses(host)]  # fmt: skip
        log.debug("RFC 3263: %s resolves to %s", uri, targets)
        return targets[:MAX_TARGETS]

    async def _addresses(self, host: str) -> list[str]:
        if is_ip(host):
            return [host]
        if not self._custom:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_DGRAM)
            except OSError as exc:
                log.info("cannot resolve %s: %s", host, exc)
                return []
            return list(dict.fromkeys(str(info[4][0]) for info in infos))
        found = [r for r in await self._lookup(host, "A") if isinstance(r, str)]
        return found or [r for r in await self._lookup(host, "AAAA") if isinstance(r, str)]

    async def _lookup(self, name: str, rdtype: str) -> list[Record]:
        cached = self.cache.get(name, rdtype)
        if cached is not None:
            return cached
        try:
            answer = await self._dns.resolve(name, rdtype, lifetime=LOOKUP_LIFETIME, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            self.cache.put(name, rdtype, [], NEGATIVE_TTL)
            return []
        except dns.exception.DNSException as exc:  # timeouts, no nameserver answering: not cached
            log.warning("DNS %s %s failed: %s", rdtype, name, exc)
            return []
        records = [_record(rdtype, rdata) for rdata in answer]
        ttl = answer.rrset.ttl if answer.rrset is not None else NEGATIVE_TTL
        self.cache.put(name, rdtype, records, float(ttl))
        return records


def _record(rdtype: str, rdata: Any) -> Record:
    if rdtype == "NAPTR":
        return Naptr(
            int(rdata.order), int(rdata.preference), rdata.flags.decode(), rdata.service.decode(),
            rdata.replacement.to_text(),
        )  # fmt: skip
    if rdtype == "SRV":
        return Srv(int(rdata.priority), int(rdata.weight), int(rdata.port), rdata.target.to_text().rstrip("."))
    return str(rdata.address)
