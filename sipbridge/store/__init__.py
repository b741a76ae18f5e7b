"""Trunk and dispatch-rule storage: Redis in livekit-server's layout, or an embedded file."""

from __future__ import annotations

from sipbridge.config import Config
from sipbridge.store.backend import Backend, StoreError
from sipbridge.store.file_backend import FileBackend
from sipbridge.store.redis_backend import RedisBackend
from sipbridge.store.sip_store import SIPStore

__all__ = ["Backend", "SIPStore", "StoreError", "open_store", "store_description"]


async def open_store(config: Config) -> SIPStore:
    """Open the store the configuration names (Redis when `redis` is set) and check it answers."""
    backend: Backend
    if config.redis is not None:
        backend = RedisBackend(config.redis)
    else:
        file_backend = FileBackend(config.storage_path)
        file_backend.open()
        backend = file_backend
    try:
        await backend.ping()
    except StoreError:
        await backend.close()
        raise
    return SIPStore(backend)


def store_description(config: Config) -> str:
    if config.redis is not None:
        return f"redis {config.redis.address} db {config.redis.db}"
    return f"embedded file {config.storage_path}"
