"""Indexes over inbound trunks and dispatch rules, so an INVITE or a write touches only the records it concerns.

A carrier-scale configuration holds tens of thousands of trunks and rules; scanning all of them for every INVITE
(and re-checking all of them for every write) made each cost grow with the store. These indexes are kept current
record by record (`put`, `remove`), and answer:

* which trunks may admit a call (`TrunkIndex.candidates`): those listing its called number (compared in
  LiveKit's normalised form), and those without numbers whose ``allowed_addresses`` name its source address,
  a network holding it or its From host, or which have no address filter;
* which rules may take a call through a trunk (`RuleIndex.candidates`): those naming the trunk or every trunk,
  and listing the called number or every number;
* which stored record a new or changed one would conflict with (`conflict`), by the same rule as
  `dispatch.validate` applies to a whole set, without building the product of its number lists.

The answers are supersets of what matches: `dispatch.trunks` and `dispatch.rules` still apply every filter to
the candidates, so a decision over an index is the decision over the full list.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from typing import TypeVar

from livekit.protocol.sip import SIPDispatchRuleInfo, SIPInboundTrunkInfo

from dispatch.addresses import parse_address
from dispatch.call import InboundCall
from dispatch.numbers import normalize_number
from dispatch.rule_kinds import rule_pin

ANY = ""
"""The key of "every number" / "every trunk" (an empty list)."""


def number_keys(numbers: Iterable[str]) -> frozenset[str]:
    """The normalised forms of a list of numbers, or {ANY} for an empty list (it accepts any number)."""
    return frozenset(normalize_number(n) for n in numbers) or frozenset({ANY})


AddressKey = tuple[str, object]
"""Where an ``allowed_addresses`` entry is filed: ("host", text), ("ip", address) or ("net", network)."""


class TrunkIndex:
    """Inbound trunks by called number, and trunks without numbers by the addresses they admit."""

    def __init__(self, trunks: Iterable[SIPInboundTrunkInfo] = ()) -> None:
        self._trunks: dict[str, SIPInboundTrunkInfo] = {}
        self._keys: dict[str, tuple[frozenset[str], frozenset[str]]] = {}  # id -> (called, calling) keys
        self._by_called: defaultdict[str, set[str]] = defaultdict(set)  # called key (ANY: no numbers) -> ids
        self._open: set[str] = set()  # no numbers and no address filter
        self._by_address: defaultdict[AddressKey, set[str]] = defaultdict(set)
        self._prefixes: Counter[tuple[int, int]] = Counter()  # (IP version, prefix length) of filed networks
        for trunk in trunks:
            self.put(trunk)

    def __len__(self) -> int:
        return len(self._trunks)

    def __iter__(self) -> Iterator[SIPInboundTrunkInfo]:
        return iter(self._trunks.values())

    def get(self, trunk_id: str) -> SIPInboundTrunkInfo | None:
        return self._trunks.get(trunk_id)

    def put(self, trunk: SIPInboundTrunkInfo) -> None:
        """Add a trunk, or replace the one with its ID."""
        trunk_id = trunk.sip_trunk_id
        self.remove(trunk_id)
        self._trunks[trunk_id] = trunk
        called, calling = number_keys(trunk.numbers), number_keys(trunk.allowed_numbers)
        self._keys[trunk_id] = (called, calling)
        for key in called:
            self._by_called[key].add(trunk_id)
        if trunk.numbers:
            return
        if not trunk.allowed_addresses:
            self._open.add(trunk_id)
        for address_key in _address_keys(trunk.allowed_addresses):
            self._by_address[address_key].add(trunk_id)
            if address_key[0] == "net":
                self._prefixes[_prefix(address_key)] += 1

    def remove(self, trunk_id: str) -> None:
        trunk = self._trunks.pop(trunk_id, None)
        if trunk is None:
            return
        called, _ = self._keys.pop(trunk_id)
        for key in called:
            _discard(self._by_called, key, trunk_id)
        self._open.discard(trunk_id)
        if trunk.numbers:
            return
        for address_key in _address_keys(trunk.allowed_addresses):
            _discard(self._by_address, address_key, trunk_id)
            if address_key[0] == "net":
                prefix = _prefix(address_key)
                self._prefixes[prefix] -= 1
                if self._prefixes[prefix] <= 0:
                    del self._prefixes[prefix]

    def candidates(self, call: InboundCall) -> list[SIPInboundTrunkInfo]:
        """Every trunk that may admit ``call`` (sorted by ID), and no trunk that cannot for its number or source."""
        ids = set(self._by_called.get(normalize_number(call.called_number), ())) if call.called_number else set()
        ids |= self._open
        keys: list[AddressKey] = []
        if call.from_host:
            keys.append(("host", call.from_host.lower()))
        source = parse_address(call.source_ip)
        if source is not None:
            keys.append(("ip", source))
            keys += [
                ("net", ipaddress.ip_network(f"{source}/{length}", strict=False))
                for version, length in self._prefixes
                if version == source.version
            ]
        for key in keys:
            ids |= self._by_address.get(key, set())
        return [self._trunks[i] for i in sorted(ids)]

    def conflict(self, trunk: SIPInboundTrunkInfo) -> SIPInboundTrunkInfo | None:
        """A stored trunk (other than ``trunk`` itself) that would accept the same calls equally well."""
        called, calling = number_keys(trunk.numbers), number_keys(trunk.allowed_numbers)
        seen: set[str] = set()
        for key in sorted(called):
            for other_id in sorted(self._by_called.get(key, ())):
                if other_id == trunk.sip_trunk_id or other_id in seen:
                    continue
                seen.add(other_id)
                if calling & self._keys[other_id][1]:
                    return self._trunks[other_id]
        return None


def _address_keys(entries: Iterable[str]) -> set[AddressKey]:
    """Where a trunk with these ``allowed_addresses`` is filed: each entry's text (a From host may equal it), and
    its address or network when it is one."""
    keys: set[AddressKey] = set()
    for entry in entries:
        keys.add(("host", entry.lower()))
        address, _, length = entry.partition("/")
        host = parse_address(address)
        if host is not None and not length:
            keys.add(("ip", host))
        elif host is not None and length.isdigit():
            try:
                keys.add(("net", ipaddress.ip_network(f"{host}/{length}", strict=False)))
            except ValueError:
                continue
    return keys


def _prefix(key: AddressKey) -> tuple[int, int]:
    network = key[1]
    assert isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network)
    return network.version, network.prefixlen


class RuleIndex:
    """Dispatch rules by (trunk, called number), each side ANY for an empty list."""

    def __init__(self, rules: Iterable[SIPDispatchRuleInfo] = ()) -> None:
        self._rules: dict[str, SIPDispatchRuleInfo] = {}
        self._keys: dict[str, tuple[str, frozenset[str], frozenset[str], frozenset[str]]] = {}
        self._by_trunk_called: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        for rule in rules:
            self.put(rule)

    def __len__(self) -> int:
        return len(self._rules)

    def __iter__(self) -> Iterator[SIPDispatchRuleInfo]:
        return iter(self._rules.values())

    def get(self, rule_id: str) -> SIPDispatchRuleInfo | None:
        return self._rules.get(rule_id)

    def put(self, rule: SIPDispatchRuleInfo) -> None:
        rule_id = rule.sip_dispatch_rule_id
        self.remove(rule_id)
        self._rules[rule_id] = rule
        keys = rule_keys(rule)
        self._keys[rule_id] = keys
        _, trunks, _, called = keys
        for trunk_id in trunks:
            for number in called:
                self._by_trunk_called[(trunk_id, number)].add(rule_id)

    def remove(self, rule_id: str) -> None:
        if self._rules.pop(rule_id, None) is None:
            return
        _, trunks, _, called = self._keys.pop(rule_id)
        for trunk_id in trunks:
            for number in called:
                _discard(self._by_trunk_called, (trunk_id, number), rule_id)

    def candidates(self, trunk: SIPInboundTrunkInfo | None, call: InboundCall) -> list[SIPDispatchRuleInfo]:
        """Every rule that may take ``call`` through ``trunk`` (sorted by ID)."""
        trunk_keys = [ANY] if trunk is None else [trunk.sip_trunk_id, ANY]
        number_keys_ = [ANY] + ([normalize_number(call.called_number)] if call.called_number else [])
        ids: set[str] = set()
        for trunk_id in trunk_keys:
            for number in number_keys_:
                ids |= self._by_trunk_called.get((trunk_id, number), set())
        return [self._rules[i] for i in sorted(ids)]

    def conflict(self, rule: SIPDispatchRuleInfo) -> SIPDispatchRuleInfo | None:
        """A stored rule (other than ``rule`` itself) that would claim the same calls."""
        keys = rule_keys(rule)
        _, trunks, _, called = keys
        seen: set[str] = set()
        for trunk_id in sorted(trunks):
            for number in sorted(called):
                for other_id in sorted(self._by_trunk_called.get((trunk_id, number), ())):
                    if other_id == rule.sip_dispatch_rule_id or other_id in seen:
                        continue
                    seen.add(other_id)
                    if rules_overlap(keys, self._keys[other_id]):
                        return self._rules[other_id]
        return None


RuleKeys = tuple[str, frozenset[str], frozenset[str], frozenset[str]]
"""(PIN, trunk IDs or {ANY}, calling number keys, called number keys)."""


def rule_keys(rule: SIPDispatchRuleInfo) -> RuleKeys:
    trunks = frozenset(rule.trunk_ids) or frozenset({ANY})
    return rule_pin(rule), trunks, number_keys(rule.inbound_numbers), number_keys(rule.numbers)


def rules_overlap(a: RuleKeys, b: RuleKeys) -> bool:
    """Two rules claim a common call: same PIN, and they share a trunk, a caller and a called number (ANY
    matching only ANY, as livekit-server compares them)."""
    return a[0] == b[0] and bool(a[1] & b[1]) and bool(a[2] & b[2]) and bool(a[3] & b[3])


K = TypeVar("K")


def _discard(buckets: defaultdict[K, set[str]], key: K, record_id: str) -> None:
    bucket = buckets.get(key)
    if bucket is not None:
        bucket.discard(record_id)
        if not bucket:
            del buckets[key]
