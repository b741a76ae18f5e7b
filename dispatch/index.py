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

Records are kept serialized and decoded when handed out: a decoded protobuf message costs about 1.2 KiB, its
bytes a few dozen, and an INVITE decodes only its few candidates.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from typing import Generic, TypeVar

from google.protobuf.message import Message
from livekit.protocol.sip import SIPDispatchRuleInfo, SIPInboundTrunkInfo

from dispatch.addresses import parse_address
from dispatch.call import InviteFacts
from dispatch.numbers import normalize_number
from dispatch.rule_kinds import rule_pin

ANY = ""
"""The key of "every number" / "every trunk" (an empty list)."""


def number_keys(numbers: Iterable[str]) -> frozenset[str]:
    """The normalised forms of a list of numbers, or {ANY} for an empty list (it accepts any number)."""
    return frozenset(normalize_number(n) for n in numbers) or frozenset({ANY})


K = TypeVar("K")
M = TypeVar("M", bound=Message)


def in_id_order(records: dict[str, bytes], cls: type[M], after_id: str = "") -> Iterator[M]:
    """The records whose IDs sort after ``after_id``, in ID order, each decoded only when reached (a page of a
    listing decodes the page, not the store)."""
    for record_id in sorted(rid for rid in records if rid > after_id):
        yield cls.FromString(records[record_id])


class Buckets(Generic[K]):
    """Record IDs filed under keys. Most keys file one record (a number belongs to one trunk), so a lone ID is
    kept as itself and only a shared key gets a set (a set per key would cost ~200 bytes per record)."""

    def __init__(self) -> None:
        self._filed: dict[K, str | set[str]] = {}

    def add(self, key: K, record_id: str) -> None:
        filed = self._filed.get(key)
        if filed is None:
            self._filed[key] = record_id
        elif isinstance(filed, set):
            filed.add(record_id)
        elif filed != record_id:
            self._filed[key] = {filed, record_id}

    def discard(self, key: K, record_id: str) -> None:
        filed = self._filed.get(key)
        if filed == record_id:
            del self._filed[key]
        elif isinstance(filed, set):
            filed.discard(record_id)
            if len(filed) == 1:
                self._filed[key] = filed.pop()

    def get(self, key: K) -> Collection[str]:
        filed = self._filed.get(key)
        if filed is None:
            return ()
        return (filed,) if isinstance(filed, str) else filed


AddressKey = tuple[str, object]
"""Where an ``allowed_addresses`` entry is filed: ("host", text), ("ip", address) or ("net", network)."""


class TrunkIndex:
    """Inbound trunks by called number, and trunks without numbers by the addresses they admit."""

    def __init__(self, trunks: Iterable[SIPInboundTrunkInfo] = ()) -> None:
        self._trunks: dict[str, bytes] = {}
        self._keys: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}  # id -> (called, calling) keys
        self._by_called: Buckets[str] = Buckets()  # called key (ANY: no numbers) -> ids
        self._open: set[str] = set()  # no numbers and no address filter
        self._by_address: Buckets[AddressKey] = Buckets()
        self._prefixes: Counter[tuple[int, int]] = Counter()  # (IP version, prefix length) of filed networks
        for trunk in trunks:
            self.put(trunk)

    def __len__(self) -> int:
        return len(self._trunks)

    def in_order(self, after_id: str = "") -> Iterator[SIPInboundTrunkInfo]:
        return in_id_order(self._trunks, SIPInboundTrunkInfo, after_id)

    def get(self, trunk_id: str) -> SIPInboundTrunkInfo | None:
        """A decoded copy of the trunk (the caller may change it)."""
        data = self._trunks.get(trunk_id)
        return None if data is None else SIPInboundTrunkInfo.FromString(data)

    def put(self, trunk: SIPInboundTrunkInfo) -> None:
        """Add a trunk, or replace the one with its ID."""
        trunk_id = trunk.sip_trunk_id
        self.remove(trunk_id)
        self._trunks[trunk_id] = trunk.SerializeToString()
        called, calling = number_keys(trunk.numbers), number_keys(trunk.allowed_numbers)
        self._keys[trunk_id] = (tuple(called), tuple(calling))
        for key in called:
            self._by_called.add(key, trunk_id)
        if trunk.numbers:
            return
        if not trunk.allowed_addresses:
            self._open.add(trunk_id)
        for address_key in _address_keys(trunk.allowed_addresses):
            self._by_address.add(address_key, trunk_id)
            if address_key[0] == "net":
                self._prefixes[_prefix(address_key)] += 1

    def remove(self, trunk_id: str) -> None:
        data = self._trunks.pop(trunk_id, None)
        if data is None:
            return
        called, _ = self._keys.pop(trunk_id)
        for key in called:
            self._by_called.discard(key, trunk_id)
        self._open.discard(trunk_id)
        trunk = SIPInboundTrunkInfo.FromString(data)
        if trunk.numbers:
            return
        for address_key in _address_keys(trunk.allowed_addresses):
            self._by_address.discard(address_key, trunk_id)
            if address_key[0] == "net":
                prefix = _prefix(address_key)
                self._prefixes[prefix] -= 1
                if self._prefixes[prefix] <= 0:
                    del self._prefixes[prefix]

    def candidates(self, call: InviteFacts) -> list[SIPInboundTrunkInfo]:
        """Every trunk that may admit ``call`` (sorted by ID), and no trunk that cannot for its number or source."""
        ids = set(self._by_called.get(normalize_number(call.called_number))) if call.called_number else set()
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
            ids.update(self._by_address.get(key))
        return [SIPInboundTrunkInfo.FromString(self._trunks[i]) for i in sorted(ids)]

    def conflict(self, trunk: SIPInboundTrunkInfo) -> SIPInboundTrunkInfo | None:
        """A stored trunk (other than ``trunk`` itself) that would accept the same calls equally well."""
        called, calling = number_keys(trunk.numbers), number_keys(trunk.allowed_numbers)
        seen: set[str] = set()
        for key in sorted(called):
            for other_id in sorted(self._by_called.get(key)):
                if other_id == trunk.sip_trunk_id or other_id in seen:
                    continue
                seen.add(other_id)
                if not calling.isdisjoint(self._keys[other_id][1]):
                    return self.get(other_id)
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
        self._rules: dict[str, bytes] = {}
        self._keys: dict[str, PackedRuleKeys] = {}
        self._by_trunk_called: Buckets[tuple[str, str]] = Buckets()
        for rule in rules:
            self.put(rule)

    def __len__(self) -> int:
        return len(self._rules)

    def in_order(self, after_id: str = "") -> Iterator[SIPDispatchRuleInfo]:
        return in_id_order(self._rules, SIPDispatchRuleInfo, after_id)

    def get(self, rule_id: str) -> SIPDispatchRuleInfo | None:
        """A decoded copy of the rule (the caller may change it)."""
        data = self._rules.get(rule_id)
        return None if data is None else SIPDispatchRuleInfo.FromString(data)

    def put(self, rule: SIPDispatchRuleInfo) -> None:
        rule_id = rule.sip_dispatch_rule_id
        self.remove(rule_id)
        self._rules[rule_id] = rule.SerializeToString()
        pin, trunks, calling, called = rule_keys(rule)
        self._keys[rule_id] = (pin, tuple(trunks), tuple(calling), tuple(called))
        for trunk_id in trunks:
            for number in called:
                self._by_trunk_called.add((trunk_id, number), rule_id)

    def remove(self, rule_id: str) -> None:
        if self._rules.pop(rule_id, None) is None:
            return
        _, trunks, _, called = self._keys.pop(rule_id)
        for trunk_id in trunks:
            for number in called:
                self._by_trunk_called.discard((trunk_id, number), rule_id)

    def candidates(self, trunk: SIPInboundTrunkInfo | None, call: InviteFacts) -> list[SIPDispatchRuleInfo]:
        """Every rule that may take ``call`` through ``trunk`` (sorted by ID)."""
        trunk_keys = [ANY] if trunk is None else [trunk.sip_trunk_id, ANY]
        number_keys_ = [ANY] + ([normalize_number(call.called_number)] if call.called_number else [])
        ids: set[str] = set()
        for trunk_id in trunk_keys:
            for number in number_keys_:
                ids.update(self._by_trunk_called.get((trunk_id, number)))
        return [SIPDispatchRuleInfo.FromString(self._rules[i]) for i in sorted(ids)]

    def conflict(self, rule: SIPDispatchRuleInfo) -> SIPDispatchRuleInfo | None:
        """A stored rule (other than ``rule`` itself) that would claim the same calls."""
        keys = rule_keys(rule)
        _, trunks, _, called = keys
        seen: set[str] = set()
        for trunk_id in sorted(trunks):
            for number in sorted(called):
                for other_id in sorted(self._by_trunk_called.get((trunk_id, number))):
                    if other_id == rule.sip_dispatch_rule_id or other_id in seen:
                        continue
                    seen.add(other_id)
                    if rules_overlap(keys, self._keys[other_id]):
                        return self.get(other_id)
        return None


RuleKeys = tuple[str, frozenset[str], frozenset[str], frozenset[str]]
"""(PIN, trunk IDs or {ANY}, calling number keys, called number keys)."""
PackedRuleKeys = tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]
"""`RuleKeys` as the index keeps them (a tuple is a quarter of a small frozenset's size)."""


def rule_keys(rule: SIPDispatchRuleInfo) -> RuleKeys:
    trunks = frozenset(rule.trunk_ids) or frozenset({ANY})
    return rule_pin(rule), trunks, number_keys(rule.inbound_numbers), number_keys(rule.numbers)


def rules_overlap(a: RuleKeys, b: RuleKeys | PackedRuleKeys) -> bool:
    """Two rules claim a common call: same PIN, and they share a trunk, a caller and a called number (ANY
    matching only ANY, as livekit-server compares them)."""
    return a[0] == b[0] and not (a[1].isdisjoint(b[1]) or a[2].isdisjoint(b[2]) or a[3].isdisjoint(b[3]))
