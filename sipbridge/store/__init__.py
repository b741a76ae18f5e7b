"""Trunk and dispatch-rule storage: Redis in livekit-server's layout, or an embedded SQLite database."""

from __future__ import annotations

from sipbridge.config import Config
from sipbridge.store.backend import Backend, StoreError
from sipbridge.store.redis_backend import RedisBackend
from sipbridge.store.sip_store import SIPStore
from sipbridge.store.sqlite_backend import SqliteBackend, database_path

__all__ = ["Backend", "SIPStore", "StoreError", "open_store", "store_description"]


async def open_store(config: Config, *, read_only: bool = False) -> SIPStore:
    """Open the store the configuration names (Redis when `redis` is set), check it answers and load it.

    ``read_only``: for a reader beside a running bridge (``sipbridge dispatch test``), which the embedded store's
    lock would otherwise refuse."""
    backend: Backend
    if config.redis is not None:
        backend = RedisBackend(config.redis)
    else:
        sqlite = SqliteBackend(config.storage_path, read_only=read_only)
        sqlite.open()
        backend = sqlite
    store = SIPStore(backend)
    try:
        await backend.ping()
        await store.load()
    except StoreError:
        await store.close()
        raise
    return store


def store_description(config: Config) -> str:
    if config.redis is not None:
        return f"redis {config.redis.address} db {config.redis.db}"
    return f"embedded database {database_path(config.storage_path)}"
