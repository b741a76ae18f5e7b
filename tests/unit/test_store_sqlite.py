"""The embedded store: survives restarts, never half-writes, refuses a second writer, lets readers in, and imports
an old JSON store once."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest
from livekit.protocol.sip import (
    SIPDispatchRule,
    SIPDispatchRuleDirect,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
    SIPTrunkInfo,
)

from dispatch.call import InviteFacts
from sipbridge.store import SIPStore, StoreError
from sipbridge.store.backend import SIP_INBOUND_TRUNK
from sipbridge.store.sqlite_backend import SqliteBackend


async def opened(path: Path, *, read_only: bool = False) -> SIPStore:
    backend = SqliteBackend(path, read_only=read_only)
    backend.open()
    store = SIPStore(backend)
    await store.load()
    return store


async def test_records_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = await opened(path)
    await store.put_inbound_trunk(SIPInboundTrunkInfo(sip_trunk_id="ST_a", name="A", numbers=["+15105550100"]))
    await store.put_legacy_trunk(SIPTrunkInfo(sip_trunk_id="ST_b", outbound_number="+1222"))
    await store.close()

    reopened = await opened(path)
    trunks = list(reopened.inbound_trunks())
    assert [(t.sip_trunk_id, t.name) for t in trunks] == [("ST_a", "A"), ("ST_b", "")]
    assert list(trunks[1].numbers) == ["+1222"]
    assert await reopened.delete_trunk("ST_a")
    assert not await reopened.delete_trunk("ST_a")
    await reopened.close()
    assert [t.sip_trunk_id for t in (await opened(path)).inbound_trunks()] == ["ST_b"]


async def test_a_failed_write_changes_nothing(tmp_path: Path) -> None:
    store = await opened(tmp_path / "store.db")
    await store.put_inbound_trunk(SIPInboundTrunkInfo(sip_trunk_id="ST_a", numbers=["+1"]))
    await store.backend.close()  # the database goes away under the store
    with pytest.raises(StoreError):
        await store.put_inbound_trunk(SIPInboundTrunkInfo(sip_trunk_id="ST_b", numbers=["+2"]))
    assert [t.sip_trunk_id for t in store.inbound_trunks()] == ["ST_a"]  # nor did the copy take it


async def test_the_indexes_follow_every_write(tmp_path: Path) -> None:
    store = await opened(tmp_path / "store.db")
    await store.put_inbound_trunk(SIPInboundTrunkInfo(sip_trunk_id="ST_a", numbers=["+15105550100"]))
    rule = SIPDispatchRuleInfo(
        sip_dispatch_rule_id="SDR_a", rule=SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name="r"))
    )
    await store.put_dispatch_rule(rule)
    call = InviteFacts("15105550100", "+1", "192.0.2.1")
    assert [t.sip_trunk_id for t in store.inbound.candidates(call)] == ["ST_a"]
    assert [r.sip_dispatch_rule_id for r in store.rules.candidates(store.inbound.get("ST_a"), call)] == ["SDR_a"]
    await store.delete_trunk("ST_a")
    await store.delete_dispatch_rule("SDR_a")
    assert store.inbound.candidates(call) == [] and len(store.rules) == 0


async def test_a_second_writer_is_refused_and_a_reader_gets_in(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    first = await opened(path)
    await first.put_inbound_trunk(SIPInboundTrunkInfo(sip_trunk_id="ST_a", numbers=["+1"]))
    with pytest.raises(StoreError, match="in use by another sipbridge process"):
        await opened(path)
    reader = await opened(path, read_only=True)  # e.g. `sipbridge dispatch test` beside a running bridge
    assert [t.sip_trunk_id for t in reader.inbound_trunks()] == ["ST_a"]
    with pytest.raises(StoreError):
        await reader.put_inbound_trunk(SIPInboundTrunkInfo(sip_trunk_id="ST_b", numbers=["+2"]))
    await reader.close()
    await first.close()
    await (await opened(path)).close()


async def test_an_old_json_store_is_imported_once(tmp_path: Path) -> None:
    trunk = SIPInboundTrunkInfo(sip_trunk_id="ST_old", numbers=["+15105550100"])
    doc = {
        "version": 1,
        "tables": {SIP_INBOUND_TRUNK: {"ST_old": base64.b64encode(trunk.SerializeToString()).decode()}},
    }
    (tmp_path / "store.json").write_text(json.dumps(doc))
    store = await opened(tmp_path / "store.json")  # the old default path: the database goes beside it
    assert [t.sip_trunk_id for t in store.inbound_trunks()] == ["ST_old"]
    await store.close()
    assert (tmp_path / "store.db").exists() and (tmp_path / "store.json.migrated").exists()
    assert not (tmp_path / "store.json").exists()


def test_a_corrupt_database_is_reported_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError):
        SqliteBackend(path).open()
    assert path.read_bytes() == b"not a database" * 100
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(path).execute("SELECT 1 FROM sqlite_master").fetchall()
