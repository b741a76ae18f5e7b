"""The embedded store: survives restarts, never half-writes, and refuses a second process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from livekit.protocol.sip import SIPInboundTrunkInfo, SIPTrunkInfo

from sipbridge.store import SIPStore, StoreError
from sipbridge.store.file_backend import FileBackend


def opened(path: Path) -> FileBackend:
    backend = FileBackend(path)
    backend.open()
    return backend


async def test_records_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    store = SIPStore(opened(path))
    await store.put_inbound_trunk(SIPInboundTrunkInfo(sip_trunk_id="ST_a", name="A", numbers=["+15105550100"]))
    await store.put_legacy_trunk(SIPTrunkInfo(sip_trunk_id="ST_b", outbound_number="+1222"))
    await store.close()

    reopened = SIPStore(opened(path))
    trunks = await reopened.list_inbound_trunks()
    assert [(t.sip_trunk_id, t.name) for t in trunks] == [("ST_a", "A"), ("ST_b", "")]
    assert list(trunks[1].numbers) == ["+1222"]
    assert await reopened.delete_trunk("ST_a")
    assert not await reopened.delete_trunk("ST_a")
    await reopened.close()
    assert [t.sip_trunk_id for t in await SIPStore(opened(path)).list_inbound_trunks()] == ["ST_b"]


async def test_a_failed_write_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "store.json"
    store = SIPStore(opened(path))
    await store.put_inbound_trunk(SIPInboundTrunkInfo(sip_trunk_id="ST_a", numbers=["+1"]))
    before = path.read_bytes()

    def disk_full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(StoreError, match="No space left"):
        await store.put_inbound_trunk(SIPInboundTrunkInfo(sip_trunk_id="ST_b", numbers=["+2"]))
    # Neither the file nor the live state took the change.
    assert path.read_bytes() == before
    assert [t.sip_trunk_id for t in await store.list_inbound_trunks()] == ["ST_a"]


async def test_a_leftover_temporary_file_from_a_crash_is_harmless(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    store = SIPStore(opened(path))
    await store.put_inbound_trunk(SIPInboundTrunkInfo(sip_trunk_id="ST_a", numbers=["+1"]))
    await store.close()
    # A crash mid-write leaves a truncated temporary file; the store file itself is whole.
    path.with_name(path.name + ".tmp").write_text('{"version": 1, "tab')
    reopened = SIPStore(opened(path))
    assert [t.sip_trunk_id for t in await reopened.list_inbound_trunks()] == ["ST_a"]


async def test_a_second_process_cannot_open_the_same_store(tmp_path: Path) -> None:
    first = opened(tmp_path / "store.json")
    with pytest.raises(StoreError, match="in use by another sipbridge process"):
        opened(tmp_path / "store.json")
    await first.close()
    await opened(tmp_path / "store.json").close()


def test_a_corrupt_store_file_is_reported_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    path.write_text("not json")
    with pytest.raises(StoreError, match="unreadable store file"):
        opened(path)
    assert path.read_text() == "not json"
