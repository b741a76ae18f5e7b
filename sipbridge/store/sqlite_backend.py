"""Embedded backend for a node without Redis: the tables in one SQLite database (the standard library's), in WAL mode.

A write costs one small transaction whatever the store holds (the JSON file this replaces was rewritten whole on
every change: 3 s per create at 4 000 trunks). With ``synchronous=FULL`` a write the API acknowledged is on disk,
so a crash or kill -9 at any moment loses nothing acknowledged and leaves nothing half-written (SQLite's own
atomic commit). An exclusive lock on a sidecar file keeps a second bridge from writing the same store; readers
(``sipbridge dispatch test``) open it read-only beside a running bridge, which WAL allows.

A store path ending in ``.json`` (the old format) names the database ``<name>.db`` beside it. An old JSON store
``<name>.json`` beside the database is imported once, into an empty database, and renamed
``<name>.json.migrated``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

from sipbridge.store.backend import ChangeSink, StoreError

T = TypeVar("T")
JSON_FORMAT_VERSION = 1
SCHEMA = "CREATE TABLE IF NOT EXISTS records (tbl TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (tbl, id)) WITHOUT ROWID"  # noqa: E501


def database_path(path: Path) -> Path:
    """Where the database lives for a configured ``storage.path``."""
    return path.with_suffix(".db") if path.suffix == ".json" else path


class SqliteBackend:
    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self._path = database_path(path)
        self._read_only = read_only
        self._db: sqlite3.Connection | None = None
        self._db_lock = threading.Lock()
        self._lock_file: IO[bytes] | None = None

    def open(self) -> None:
        """Take the store's lock (unless read-only), open the database, import an old JSON store once."""
        try:
            if self._read_only:
                if not self._path.exists():
                    raise StoreError(f"storage.path {self._path}: no store there yet")
                self._db = sqlite3.connect(
                    f"file:{self._path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
                )
                return
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._lock()
            self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(SCHEMA)
            self._migrate_json()
        except sqlite3.Error as e:
            self._release()
            raise StoreError(f"storage.path {self._path}: {e}") from e
        except OSError as e:
            self._release()
            raise StoreError(f"storage.path {self._path}: {e.strerror or e}") from e

    def _lock(self) -> None:
        lock_file = open(self._path.with_name(self._path.name + ".lock"), "wb")  # noqa: SIM115 (held open)
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock_file.close()
            raise StoreError(f"storage.path {self._path}: in use by another sipbridge process") from None
        self._lock_file = lock_file

    def _migrate_json(self) -> None:
        old = self._path.with_suffix(".json")
        if not old.exists():
            return
        assert self._db is not None
        if self._db.execute("SELECT 1 FROM records LIMIT 1").fetchone() is not None:
            return  # imported before (and the JSON put back by hand): the database wins
        try:
            doc = json.loads(old.read_text())
        except ValueError as e:
            raise StoreError(f"storage.path {old}: unreadable store file: {e}") from e
        if not isinstance(doc, dict) or doc.get("version") != JSON_FORMAT_VERSION:
            raise StoreError(f"storage.path {old}: not a sipbridge store (format {JSON_FORMAT_VERSION})")
        rows = [
            (table, rid, base64.b64decode(value))
            for table, records in doc.get("tables", {}).items()
            for rid, value in records.items()
        ]
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", rows)
        old.rename(old.with_name(old.name + ".migrated"))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        assert self._db is not None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    async def _run(self, action: Callable[[sqlite3.Connection], T]) -> T:
        """One database action in a worker thread (a commit waits for the disk), one at a time."""

        def locked() -> T:
            with self._db_lock:
                if self._db is None:
                    raise StoreError(f"storage.path {self._path}: store is not open")
                return action(self._db)

        try:
            return await asyncio.to_thread(locked)
        except sqlite3.Error as e:
            raise StoreError(f"storage.path {self._path}: {e}") from e

    async def get(self, table: str, record_id: str) -> bytes | None:
        row = await self._run(
            lambda db: db.execute("SELECT data FROM records WHERE tbl = ? AND id = ?", (table, record_id)).fetchone()
        )
        return None if row is None else bytes(row[0])

    async def get_all(self, table: str) -> dict[str, bytes]:
        rows = await self._run(
            lambda db: db.execute("SELECT id, data FROM records WHERE tbl = ?", (table,)).fetchall()
        )
        return {rid: bytes(data) for rid, data in rows}

    async def put(self, table: str, record_id: str, data: bytes) -> None:
        def write(db: sqlite3.Connection) -> None:
            with self._transaction():
                db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", (table, record_id, data))

        await self._run(write)

    async def delete(self, table: str, record_id: str) -> bool:
        def remove(db: sqlite3.Connection) -> bool:
            with self._transaction():
                return db.execute("DELETE FROM records WHERE tbl = ? AND id = ?", (table, record_id)).rowcount > 0

        return await self._run(remove)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def watch(self, sink: ChangeSink) -> None:
        """Nothing to watch: this process is the store's only writer."""
        return None

    async def catch_up(self) -> None:
        return None

    async def close(self) -> None:
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None
        self._release()

    def _release(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

