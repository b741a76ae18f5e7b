"""Redis backend: one hash per table, field = record ID, value = protobuf bytes (livekit-server's own layout).

Every node keeps the records in memory (sipbridge.store.sip_store), so it must hear of changes other writers
make: other bridge nodes, and a livekit-server sharing the Redis. A node's own writes are announced on the
``sipbridge:sip_records`` channel (table and ID), which the other nodes fetch one by one. Writes by anyone else
show through Redis keyspace notifications (switched on for hash events where the server allows ``CONFIG SET``):
a table with a change no announcement explains is re-read whole, shortly after. Where keyspace notifications
cannot be had, every table is re-read every ``RESYNC_INTERVAL`` seconds instead (docs/configuration-scale.md).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from collections.abc import Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from sipbridge.config import RedisConfig
from sipbridge.store.backend import TABLES, ChangeSink, StoreError

log = logging.getLogger(__name__)

CHANGES_CHANNEL = "sipbridge:sip_records"
RESYNC_DELAY = 0.3
"""Seconds to wait after an unexplained change before re-reading its table (a burst costs one read)."""
RESYNC_INTERVAL = 10.0
"""Without keyspace notifications: how often every table is re-read."""
MARKER = "\x00"
CATCH_UP_TIMEOUT = 2.0


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
        self._config = config
        self._address = config.address
        self._redis = redis_client(config)
        self._watcher: _Watcher | None = None

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
            await self._redis.publish(CHANGES_CHANNEL, f"{table}\n{record_id}")
        except RedisError as e:
            raise self._error(e) from e

    async def delete(self, table: str, record_id: str) -> bool:
        try:
            removed: int = await self._redis.hdel(table, record_id)
            if removed:
                await self._redis.publish(CHANGES_CHANNEL, f"{table}\n{record_id}")
        except RedisError as e:
            raise self._error(e) from e
        return removed > 0

    async def watch(self, sink: ChangeSink) -> None:
        """Follow other writers' changes until cancelled: see the module docstring."""
        self._watcher = _Watcher(self, sink)
        try:
            await self._watcher.run()
        finally:
            await self._watcher.close()
            self._watcher = None

    async def catch_up(self) -> None:
        """Return once every change made before this call has reached the sink (a read after a write elsewhere
        then sees it): a marker goes round the change channel behind all earlier notifications, then tables with
        unexplained changes are re-read at once."""
        watcher = self._watcher
        if watcher is None or not watcher.listening.is_set():
            return
        marker = secrets.token_hex(8)
        arrived = watcher.expect(marker)
        try:
            await self._redis.publish(CHANGES_CHANNEL, f"{MARKER}{marker}")
            await asyncio.wait_for(arrived, CATCH_UP_TIMEOUT)
        except (RedisError, TimeoutError) as e:
            log.warning("could not catch up with configuration changes by other writers: %r", e)
            return
        finally:
            watcher.forget(marker)
        await watcher.resync_unexplained()

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except RedisError as e:
            raise self._error(e) from e

    async def close(self) -> None:
        await self._redis.aclose()

    def _error(self, e: RedisError) -> StoreError:
        return StoreError(f"redis at {self._address}: {e}")


class _Watcher:
    def __init__(self, backend: RedisBackend, sink: ChangeSink) -> None:
        self._backend = backend
        self._sink = sink
        self._client = redis_client(backend._config, socket_timeout=None)
        self._pubsub = self._client.pubsub()
        self._unexplained: Counter[str] = Counter()
        self._resyncs: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._markers: dict[str, asyncio.Future[None]] = {}
        self.listening = asyncio.Event()
        """Set once subscribed and caught up with what happened before."""

    async def run(self) -> None:
        db = self._backend._config.db
        await self._pubsub.subscribe(CHANGES_CHANNEL)
        keyspace = await self._enable_keyspace_events()
        if keyspace:
            await self._pubsub.psubscribe(*(f"__keyspace@{db}__:{table}" for table in TABLES))
        for table in TABLES:  # what changed before we listened
            await self._resync(table)
        self.listening.set()
        if not keyspace:
            self._spawn(self._resync_periodically())
        while True:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is not None:
                await self._on_message(message)

    async def _enable_keyspace_events(self) -> bool:
        try:
            reply = await self._client.config_get("notify-keyspace-events")
            flags = _bytes(reply["notify-keyspace-events"] or b"").decode()
            if "K" not in flags or not ("h" in flags or "A" in flags):
                await self._client.config_set("notify-keyspace-events", "".join(sorted(set(flags + "Kh"))))
            return True
        except (ResponseError, KeyError) as e:
            log.info(
                "Redis keyspace notifications unavailable (%s): changes made by anyone but sipbridge nodes are "
                "picked up every %.0f s",
                e, RESYNC_INTERVAL,
            )  # fmt: skip
            return False

    async def _on_message(self, message: dict[str, object]) -> None:
        channel = _bytes(message["channel"]).decode()  # type: ignore[arg-type]
        data = message["data"]
        if channel == CHANGES_CHANNEL and isinstance(data, bytes | str):
            text = _bytes(data).decode()
            if text.startswith(MARKER):
                waiter = self._markers.get(text[len(MARKER) :])
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                return
            table, _, record_id = text.partition("\n")
            if self._unexplained[table] > 0:
                self._unexplained[table] -= 1
            value = await self._backend._redis.hget(table, record_id)
            self._sink.record_changed(table, record_id, None if value is None else _bytes(value))
        elif channel.startswith("__keyspace@"):
            table = channel.rpartition(":")[2]
            self._unexplained[table] += 1
            if table not in self._resyncs:
                loop = asyncio.get_running_loop()
                self._resyncs[table] = loop.call_later(RESYNC_DELAY, self._resync_if_unexplained, table)

    def expect(self, marker: str) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._markers[marker] = waiter
        return waiter

    def forget(self, marker: str) -> None:
        self._markers.pop(marker, None)

    async def resync_unexplained(self) -> None:
        """Re-read now every table with a change no announcement explained (instead of after RESYNC_DELAY)."""
        for table in [t for t, count in self._unexplained.items() if count > 0]:
            handle = self._resyncs.pop(table, None)
            if handle is not None:
                handle.cancel()
            self._unexplained.pop(table, None)
            await self._resync(table)

    def _resync_if_unexplained(self, table: str) -> None:
        self._resyncs.pop(table, None)
        if self._unexplained.pop(table, 0) > 0:
            self._spawn(self._resync(table))

    async def _resync(self, table: str) -> None:
        self._sink.table_snapshot(table, await self._backend.get_all(table))

    async def _resync_periodically(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_INTERVAL)
            for table in TABLES:
                await self._resync(table)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for handle in self._resyncs.values():
            handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
        await self._client.aclose()


def _bytes(value: bytes | str) -> bytes:
    """The client returns bytes (no decode_responses); the union is only in its type hints."""
    return value if isinstance(value, bytes) else value.encode()
