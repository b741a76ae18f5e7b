"""Embedded backend for a node without Redis: the tables in one JSON file, rewritten atomically on each change.

Every change writes a complete new file beside the old one, flushes it to disk and renames it over the old one, so
a crash at any moment leaves either the previous or the new state, never a half-written record. An exclusive lock
on a sidecar file keeps a second bridge process from using the same store at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import IO

from sipbridge.store.backend import TABLES, StoreError

FORMAT_VERSION = 1


class FileBackend:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = asyncio.Lock()
        self._lock_file: IO[bytes] | None = None
        self._tables: dict[str, dict[str, bytes]] = {t: {} for t in TABLES}

    def open(self) -> None:
        """Take the store's lock and read its file (absent = empty store)."""
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            lock_file = open(self._path.with_name(self._path.name + ".lock"), "wb")  # noqa: SIM115 (held open)
        except OSError as e:
            raise StoreError(f"storage.path {self._path}: {e.strerror or e}") from e
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock_file.close()
            raise StoreError(f"storage.path {self._path}: in use by another sipbridge process") from None
        self._lock_file = lock_file
        self._tables = self._read()

    def _read(self) -> dict[str, dict[str, bytes]]:
        tables: dict[str, dict[str, bytes]] = {t: {} for t in TABLES}
        try:
            doc = json.loads(self._path.read_text())
        except FileNotFoundError:
            return tables
        except (OSError, ValueError) as e:
            raise StoreError(f"storage.path {self._path}: unreadable store file: {e}") from e
        if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
            raise StoreError(f"storage.path {self._path}: not a sipbridge store (format {FORMAT_VERSION})")
        for table, records in doc.get("tables", {}).items():
            tables.setdefault(table, {}).update({rid: base64.b64decode(value) for rid, value in records.items()})
        return tables

    def _write(self, tables: dict[str, dict[str, bytes]]) -> None:
        doc = {
            "version": FORMAT_VERSION,
            "tables": {
                table: {rid: base64.b64encode(data).decode() for rid, data in sorted(records.items())}
                for table, records in tables.items()
            },
        }
        tmp = self._path.with_name(self._path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        dir_fd = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    async def _commit(self, table: str, change: dict[str, bytes | None]) -> None:
        """Apply ``change`` (None = delete) to a copy, persist it, and only then make it the live state."""
        tables = dict(self._tables)
        records = dict(tables.get(table, {}))
        for rid, data in change.items():
            if data is None:
                records.pop(rid, None)
            else:
                records[rid] = data
        tables[table] = records
        try:
            await asyncio.to_thread(self._write, tables)
        except OSError as e:
            raise StoreError(f"storage.path {self._path}: write failed: {e.strerror or e}") from e
        self._tables = tables

    async def get(self, table: str, record_id: str) -> bytes | None:
        return self._tables.get(table, {}).get(record_id)

    async def get_all(self, table: str) -> dict[str, bytes]:
        return dict(self._tables.get(table, {}))

    async def put(self, table: str, record_id: str, data: bytes) -> None:
        async with self._lock:
            await self._commit(table, {record_id: data})

    async def delete(self, table: str, record_id: str) -> bool:
        async with self._lock:
            if record_id not in self._tables.get(table, {}):
                return False
            await self._commit(table, {record_id: None})
            return True

    async def ping(self) -> None:
        if self._lock_file is None:
            raise StoreError(f"storage.path {self._path}: store is not open")

    async def close(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
