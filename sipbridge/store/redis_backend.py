"""Redis backend: one hash per table, field = record ID, value = protobuf bytes (livekit-server's own layout)."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from sipbridge.config import RedisConfig
from sipbridge.store.backend import StoreError


def redis_client(config: RedisConfig, socket_timeout: float | None = 5) -> aioredis.Redis:
    """A client for the configured Redis, answering bytes; `socket_timeout` None for pub/sub, which waits."""
    return aioredis.Redis(
        host=config.host,
        port=config.port,
        username=config.username or None,
        password=config.password or None,
        db=config.db,
        ssl=config.use_tls,
        socket_timeout=socket_timeout,
        socket_connect_timeout=5,
    )


class RedisBackend:
    def __init__(self, config: RedisConfig) -> None:
        self._address = config.address
        self._redis = redis_client(config)

    async def get(self, table: str, record_id: str) -> bytes | None:
        try:
            value = await self._redis.hget(table, record_id)
        except RedisError as e:
            raise self._error(e) from e
        return None if value is None else _bytes(value)

    async def get_all(self, table: str) -> dict[str, bytes]:
        try:
            values = await self._redis.hgetall(table)
        except RedisError as e:
            raise self._error(e) from e
        return {_bytes(k).decode(): _bytes(v) for k, v in values.items()}

    async def put(self, table: str, record_id: str, data: bytes) -> None:
        try:
            await self._redis.hset(table, record_id, data)
        except RedisError as e:
            raise self._error(e) from e

    async def delete(self, table: str, record_id: str) -> bool:
        try:
            removed: int = await self._redis.hdel(table, record_id)
        except RedisError as e:
            raise self._error(e) from e
        return removed > 0

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except RedisError as e:
            raise self._error(e) from e

    async def close(self) -> None:
        await self._redis.aclose()

    def _error(self, e: RedisError) -> StoreError:
        return StoreError(f"redis at {self._address}: {e}")


def _bytes(value: bytes | str) -> bytes:
    """The client returns bytes (no decode_responses); the union is only in its type hints."""
    return value if isinstance(value, bytes) else value.encode()
