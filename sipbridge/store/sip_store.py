"""Trunks and dispatch rules as protobuf messages over any `Backend`, decoded once and kept in memory with indexes.

Every read (a Get, a List page, the decision for an INVITE, a conflict check) is served from memory; a write goes
to the backend first and then to the copy, so the copy never holds what the backend refused. With Redis, other
writers' changes arrive through `Backend.watch` (sipbridge.store.redis_backend says how) and are applied record
by record, so the indexes stay current on every node.

Legacy `SIPTrunkInfo` records (created by the deprecated CreateSIPTrunk) are shown as inbound and outbound trunks,
exactly as livekit-server does, so a configuration made with either API works for calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TypeVar

from google.protobuf.message import DecodeError, Message
from livekit.protocol.sip import SIPDispatchRuleInfo, SIPInboundTrunkInfo, SIPOutboundTrunkInfo, SIPTrunkInfo

from dispatch.index import RuleIndex, TrunkIndex, in_id_order
from dispatch.legacy import legacy_to_inbound, legacy_to_outbound, serves_inbound, serves_outbound
from sipbridge.store.backend import (
    SIP_DISPATCH_RULE,
    SIP_INBOUND_TRUNK,
    SIP_OUTBOUND_TRUNK,
    SIP_TRUNK,
    TABLES,
    Backend,
    StoreError,
)

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)
_TYPES: dict[str, type[Message]] = {
    SIP_TRUNK: SIPTrunkInfo,
    SIP_INBOUND_TRUNK: SIPInboundTrunkInfo,
    SIP_OUTBOUND_TRUNK: SIPOutboundTrunkInfo,
    SIP_DISPATCH_RULE: SIPDispatchRuleInfo,
}


class SIPStore:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._records: dict[str, dict[str, bytes]] = {table: {} for table in TABLES}
        """Every record as stored (serialized: a decoded message costs ~1.2 KiB, its bytes a few dozen)."""
        self.inbound = TrunkIndex()
        """Inbound trunks, legacy ones included (as inbound): what an INVITE is matched against."""
        self._outbound: dict[str, bytes] = {}
        """Outbound trunks, legacy ones included (as outbound), serialized."""
        self.rules = RuleIndex()
        self._watch: asyncio.Task[None] | None = None

    async def load(self) -> None:
        """Read every record, then follow other writers' changes (with Redis) until `close`."""
        for table in TABLES:
            self.table_snapshot(table, await self.backend.get_all(table))
        self._watch = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        try:
            await self.backend.watch(self)
        except StoreError as e:
            log.warning("no longer following configuration changes by other writers: %s", e)

    # -- the backend's ChangeSink ----------------------------------------------------------------------------

    def record_changed(self, table: str, record_id: str, data: bytes | None) -> None:
        if table not in _TYPES:
            return
        if data is None:
            self._forget(table, record_id)
            return
        if self._records[table].get(record_id) == data:
            return
        try:
            record = _decode(_TYPES[table], table, record_id, data)
        except StoreError as e:
            log.warning("ignoring a record another writer stored: %s", e)
            return
        self._keep(table, record_id, record, data)

    def table_snapshot(self, table: str, records: dict[str, bytes]) -> None:
        if table not in _TYPES:
            return
        for record_id in [rid for rid in self._records[table] if rid not in records]:
            self._forget(table, record_id)
        for record_id, data in records.items():
            self.record_changed(table, record_id, data)

    # -- the copy and its indexes ----------------------------------------------------------------------------

    def _keep(self, table: str, record_id: str, record: Message, data: bytes) -> None:
        self._records[table][record_id] = data
        if table == SIP_INBOUND_TRUNK:
            assert isinstance(record, SIPInboundTrunkInfo)
            self.inbound.put(record)
        elif table == SIP_OUTBOUND_TRUNK:
            self._outbound[record_id] = data
        elif table == SIP_DISPATCH_RULE:
            assert isinstance(record, SIPDispatchRuleInfo)
            self.rules.put(record)
        else:
            assert isinstance(record, SIPTrunkInfo)
            self.inbound.remove(record_id)
            self._outbound.pop(record_id, None)
            if serves_inbound(record):
                self.inbound.put(legacy_to_inbound(record))
            if serves_outbound(record):
                self._outbound[record_id] = legacy_to_outbound(record).SerializeToString()

    def _forget(self, table: str, record_id: str) -> None:
        if self._records[table].pop(record_id, None) is None:
            return
        if table in (SIP_INBOUND_TRUNK, SIP_TRUNK):
            self.inbound.remove(record_id)
        if table in (SIP_OUTBOUND_TRUNK, SIP_TRUNK):
            self._outbound.pop(record_id, None)
        if table == SIP_DISPATCH_RULE:
            self.rules.remove(record_id)

    async def catch_up(self) -> None:
        """Make the copy include every change other writers made before now (the API calls this before it reads
        or checks for conflicts, so a record livekit-server just wrote is seen; INVITEs do not wait for it)."""
        await self.backend.catch_up()

    # -- reads -----------------------------------------------------------------------------------------------

    def legacy_trunks(self) -> Iterator[SIPTrunkInfo]:
        return in_id_order(self._records[SIP_TRUNK], SIPTrunkInfo)

    def inbound_trunks(self, *, after_id: str = "", with_legacy: bool = True) -> Iterator[SIPInboundTrunkInfo]:
        """Inbound trunks with IDs after ``after_id``, in ID order, decoded as they are reached; legacy trunks
        are included (as inbound) unless ``with_legacy`` is off."""
        if with_legacy:
            return self.inbound.in_order(after_id)
        return in_id_order(self._records[SIP_INBOUND_TRUNK], SIPInboundTrunkInfo, after_id)

    def outbound_trunks(self, *, after_id: str = "", with_legacy: bool = True) -> Iterator[SIPOutboundTrunkInfo]:
        """Outbound trunks, as `inbound_trunks`."""
        records = self._outbound if with_legacy else self._records[SIP_OUTBOUND_TRUNK]
        return in_id_order(records, SIPOutboundTrunkInfo, after_id)

    def dispatch_rules(self, *, after_id: str = "") -> Iterator[SIPDispatchRuleInfo]:
        return self.rules.in_order(after_id)

    async def get_inbound_trunk(self, trunk_id: str) -> SIPInboundTrunkInfo | None:
        """A decoded copy (every read decodes: the caller may change what it gets)."""
        return self.inbound.get(trunk_id)

    async def get_outbound_trunk(self, trunk_id: str) -> SIPOutboundTrunkInfo | None:
        data = self._outbound.get(trunk_id)
        return None if data is None else SIPOutboundTrunkInfo.FromString(data)

    async def get_dispatch_rule(self, rule_id: str) -> SIPDispatchRuleInfo | None:
        return self.rules.get(rule_id)

    # -- writes: the backend first, then the copy --------------------------------------------------------------

    async def _put(self, table: str, record_id: str, record: Message) -> None:
        data = record.SerializeToString()
        await self.backend.put(table, record_id, data)
        self._keep(table, record_id, record, data)

    async def put_legacy_trunk(self, trunk: SIPTrunkInfo) -> None:
        await self._put(SIP_TRUNK, trunk.sip_trunk_id, trunk)

    async def put_inbound_trunk(self, trunk: SIPInboundTrunkInfo) -> None:
        await self._put(SIP_INBOUND_TRUNK, trunk.sip_trunk_id, trunk)

    async def put_outbound_trunk(self, trunk: SIPOutboundTrunkInfo) -> None:
        await self._put(SIP_OUTBOUND_TRUNK, trunk.sip_trunk_id, trunk)

    async def put_dispatch_rule(self, rule: SIPDispatchRuleInfo) -> None:
        await self._put(SIP_DISPATCH_RULE, rule.sip_dispatch_rule_id, rule)

    async def delete_trunk(self, trunk_id: str) -> bool:
        """Delete a trunk of any kind (legacy, inbound or outbound); True when one existed."""
        removed = False
        for table in (SIP_TRUNK, SIP_INBOUND_TRUNK, SIP_OUTBOUND_TRUNK):
            if await self.backend.delete(table, trunk_id):
                removed = True
            self._forget(table, trunk_id)
        return removed

    async def delete_dispatch_rule(self, rule_id: str) -> bool:
        removed = await self.backend.delete(SIP_DISPATCH_RULE, rule_id)
        self._forget(SIP_DISPATCH_RULE, rule_id)
        return removed

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        await self.backend.close()


def _decode(cls: type[M], table: str, record_id: str, data: bytes) -> M:
    msg = cls()
    try:
        msg.ParseFromString(data)
    except DecodeError as e:
        raise StoreError(f"{table}/{record_id}: stored record is not a valid {cls.__name__}: {e}") from e
    return msg
