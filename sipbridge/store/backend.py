"""Where trunk and rule records live: a set of named tables of ID → serialised protobuf.

The table names are livekit-server's Redis hash keys, so a bridge and a livekit-server sharing one Redis see the
same records. Two backends implement the same small interface: Redis, and an embedded file for a node without Redis.
"""

from __future__ import annotations

from typing import Protocol

SIP_TRUNK = "sip_trunk"
SIP_INBOUND_TRUNK = "sip_inbound_trunk"
SIP_OUTBOUND_TRUNK = "sip_outbound_trunk"
SIP_DISPATCH_RULE = "sip_dispatch_rule"
TABLES = (SIP_TRUNK, SIP_INBOUND_TRUNK, SIP_OUTBOUND_TRUNK, SIP_DISPATCH_RULE)


class ChangeSink(Protocol):
    """Told what other writers changed, so a node's in-memory copy stays current."""

    def record_changed(self, table: str, record_id: str, data: bytes | None) -> None:
        """One record's new bytes (None: deleted)."""
        ...

    def table_snapshot(self, table: str, records: dict[str, bytes]) -> None:
        """A whole table as it is now (after notifications were missed or could not say what changed)."""
        ...


class StoreError(RuntimeError):
    """The backend failed (Redis unreachable, disk full...): the request fails, nothing is half-written."""


class Backend(Protocol):
    async def get(self, table: str, record_id: str) -> bytes | None: ...

    async def get_all(self, table: str) -> dict[str, bytes]: ...

    async def put(self, table: str, record_id: str, data: bytes) -> None: ...

    async def delete(self, table: str, record_id: str) -> bool:
        """Remove one record; True when it existed."""
        ...

    async def ping(self) -> None:
        """Raise `StoreError` when the backend cannot serve requests."""
        ...

    async def watch(self, sink: ChangeSink) -> None:
        """Report records other writers change, until cancelled (returns at once when there are none)."""
        ...

    async def catch_up(self) -> None:
        """Return once every change other writers made before the call has been reported to the sink."""
        ...

    async def close(self) -> None: ...
