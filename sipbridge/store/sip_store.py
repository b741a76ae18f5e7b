"""Trunks and dispatch rules as protobuf messages, over any `Backend`.

Legacy `SIPTrunkInfo` records (created by the deprecated CreateSIPTrunk) are shown as inbound and outbound trunks,
exactly as livekit-server does, so a configuration made with either API works for calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import DecodeError, Message
from livekit.protocol.sip import SIPDispatchRuleInfo, SIPInboundTrunkInfo, SIPOutboundTrunkInfo, SIPTrunkInfo

from dispatch.legacy import (
    inbound_views,
    legacy_to_inbound,
    legacy_to_outbound,
    outbound_views,
    serves_inbound,
    serves_outbound,
)
from sipbridge.store.backend import (
    SIP_DISPATCH_RULE,
    SIP_INBOUND_TRUNK,
    SIP_OUTBOUND_TRUNK,
    SIP_TRUNK,
    Backend,
    StoreError,
)

M = TypeVar("M", bound=Message)


class SIPStore:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def _load(self, table: str, cls: type[M], record_id: str) -> M | None:
        data = await self.backend.get(table, record_id)
        return None if data is None else _decode(cls, table, record_id, data)

    async def _load_all(self, table: str, cls: type[M]) -> list[M]:
        records = await self.backend.get_all(table)
        return [_decode(cls, table, rid, data) for rid, data in sorted(records.items())]

    async def _load_with_legacy(
        self,
        table: str,
        cls: type[M],
        record_id: str,
        serves: Callable[[SIPTrunkInfo], bool],
        convert: Callable[[SIPTrunkInfo], M],
    ) -> M | None:
        found = await self._load(table, cls, record_id)
        if found is not None:
            return found
        legacy = await self._load(SIP_TRUNK, SIPTrunkInfo, record_id)
        return convert(legacy) if legacy is not None and serves(legacy) else None

    async def list_legacy_trunks(self) -> list[SIPTrunkInfo]:
        return await self._load_all(SIP_TRUNK, SIPTrunkInfo)

    async def list_inbound_trunks(self, with_legacy: bool = True) -> list[SIPInboundTrunkInfo]:
        """Inbound trunks, sorted by ID; legacy trunks are included (as inbound) unless ``with_legacy`` is off."""
        native = await self._load_all(SIP_INBOUND_TRUNK, SIPInboundTrunkInfo)
        legacy = inbound_views(await self.list_legacy_trunks()) if with_legacy else []
        return sorted(native + legacy, key=lambda t: t.sip_trunk_id)

    async def list_outbound_trunks(self, with_legacy: bool = True) -> list[SIPOutboundTrunkInfo]:
        """Outbound trunks, sorted by ID; legacy trunks are included (as outbound) unless ``with_legacy`` is off."""
        native = await self._load_all(SIP_OUTBOUND_TRUNK, SIPOutboundTrunkInfo)
        legacy = outbound_views(await self.list_legacy_trunks()) if with_legacy else []
        return sorted(native + legacy, key=lambda t: t.sip_trunk_id)

    async def list_dispatch_rules(self) -> list[SIPDispatchRuleInfo]:
        return await self._load_all(SIP_DISPATCH_RULE, SIPDispatchRuleInfo)

    async def get_inbound_trunk(self, trunk_id: str) -> SIPInboundTrunkInfo | None:
        return await self._load_with_legacy(
            SIP_INBOUND_TRUNK, SIPInboundTrunkInfo, trunk_id, serves_inbound, legacy_to_inbound
        )

    async def get_outbound_trunk(self, trunk_id: str) -> SIPOutboundTrunkInfo | None:
        return await self._load_with_legacy(
            SIP_OUTBOUND_TRUNK, SIPOutboundTrunkInfo, trunk_id, serves_outbound, legacy_to_outbound
        )

    async def get_dispatch_rule(self, rule_id: str) -> SIPDispatchRuleInfo | None:
        return await self._load(SIP_DISPATCH_RULE, SIPDispatchRuleInfo, rule_id)

    async def put_legacy_trunk(self, trunk: SIPTrunkInfo) -> None:
        await self.backend.put(SIP_TRUNK, trunk.sip_trunk_id, trunk.SerializeToString())

    async def put_inbound_trunk(self, trunk: SIPInboundTrunkInfo) -> None:
        await self.backend.put(SIP_INBOUND_TRUNK, trunk.sip_trunk_id, trunk.SerializeToString())

    async def put_outbound_trunk(self, trunk: SIPOutboundTrunkInfo) -> None:
        await self.backend.put(SIP_OUTBOUND_TRUNK, trunk.sip_trunk_id, trunk.SerializeToString())

    async def put_dispatch_rule(self, rule: SIPDispatchRuleInfo) -> None:
        await self.backend.put(SIP_DISPATCH_RULE, rule.sip_dispatch_rule_id, rule.SerializeToString())

    async def delete_trunk(self, trunk_id: str) -> bool:
        """Delete a trunk of any kind (legacy, inbound or outbound); True when one existed."""
        removed = [await self.backend.delete(t, trunk_id) for t in (SIP_TRUNK, SIP_INBOUND_TRUNK, SIP_OUTBOUND_TRUNK)]
        return any(removed)

    async def delete_dispatch_rule(self, rule_id: str) -> bool:
        return await self.backend.delete(SIP_DISPATCH_RULE, rule_id)

    async def close(self) -> None:
        await self.backend.close()


def _decode(cls: type[M], table: str, record_id: str, data: bytes) -> M:
    msg = cls()
    try:
        msg.ParseFromString(data)
    except DecodeError as e:
        raise StoreError(f"{table}/{record_id}: stored record is not a valid {cls.__name__}: {e}") from e
    return msg
