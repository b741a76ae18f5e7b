"""The Redis message bus psrpc runs on: PUBLISH of wrapped messages, SUBSCRIBE per exact channel, queue locks.

One pub/sub connection per bus carries every subscription; a reader task hands each message to the local
subscribers of its channel. A plain subscription gets every message. A queue subscription gets a message only if
this process wins ``SET <base64(sha256(payload))> <random> EX 5 NX`` on the command connection: every process
subscribed to the channel receives the message, and the lock lets exactly one of them handle it (several local
queue subscribers of one channel take turns, as in Go).

Each channel carries one message type; a payload of another type is dropped here (a Go peer would crash on it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis
from google.protobuf.message import Message
from redis.exceptions import RedisError

from sipbridge.psrpc.wire import unwrap, wrap

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

LOCK_SECONDS = 5
_RETRY_MIN, _RETRY_MAX = 0.1, 1.0


@dataclass(eq=False)
class Subscription(Generic[M]):
    """One local subscriber of one channel; `close()` ends it (and the Redis subscription with the last one)."""

    bus: RedisBus
    channel: str
    message_type: type[M]
    callback: Callable[[M], None]
    queue: bool

    def deliver(self, payload: bytes) -> None:
        message = unwrap(payload, self.message_type)
        if message is not None:
            self.callback(message)

    async def close(self) -> None:
        await self.bus._unsubscribe(self)


@dataclass
class _Channel:
    """Local subscribers of one Redis channel; queue subscribers take turns."""

    subscribed: asyncio.Future[None]  # done once Redis confirmed the SUBSCRIBE
    plain: list[Subscription[Any]] = field(default_factory=list)
    queue: list[Subscription[Any]] = field(default_factory=list)
    next_queue: int = 0

    def next_queue_subscriber(self) -> Subscription[Any] | None:
        if not self.queue:
            return None
        self.next_queue %= len(self.queue)
        subscriber = self.queue[self.next_queue]
        self.next_queue += 1
        return subscriber


class RedisBus:
    """psrpc's Redis bus over a redis.asyncio client (which must return bytes, not decoded strings)."""

    def __init__(self, client: aioredis.Redis) -> None:
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("the psrpc bus needs a Redis client with decode_responses=False (payloads are bytes)")
        self._redis = client
        self._pubsub = client.pubsub()
        self._channels: dict[str, _Channel] = {}
        # (UN)SUBSCRIBE commands go out one at a time, and Redis confirms each per channel in order: the futures
        # waiting for those confirmations, oldest first.
        self._commands = asyncio.Lock()
        self._confirmations: dict[str, deque[asyncio.Future[None]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish(self, channel: str, message: Message) -> None:
        await self._redis.publish(channel, wrap(message))

    async def subscribe(
        self, channel: str, message_type: type[M], callback: Callable[[M], None], *, queue: bool = False
    ) -> Subscription[M]:
        """Deliver every `message_type` on `channel` to `callback` (with `queue`, only those this process locks).

        Returns once Redis has confirmed the subscription, so a message published afterwards is received.
        """
        subscription = Subscription(self, channel, message_type, callback, queue)
        async with self._commands:
            local = self._channels.get(channel)
            if local is None:
                local = self._channels[channel] = _Channel(await self._command(self._pubsub.subscribe, channel))
            (local.queue if queue else local.plain).append(subscription)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name="psrpc-bus-reader")
        try:
            await asyncio.shield(local.subscribed)
        except BaseException:
            await subscription.close()
            raise
        return subscription

    async def _unsubscribe(self, subscription: Subscription[Any]) -> None:
        async with self._commands:
            local = self._channels.get(subscription.channel)
            subscribers = [] if local is None else local.queue if subscription.queue else local.plain
            if subscription not in subscribers:
                return
            subscribers.remove(subscription)
            if local is not None and not local.plain and not local.queue:
                del self._channels[subscription.channel]
                with contextlib.suppress(RedisError):
                    await self._command(self._pubsub.unsubscribe, subscription.channel)

    async def _command(self, send: Callable[[str], Awaitable[Any]], channel: str) -> asyncio.Future[None]:
        """Send SUBSCRIBE or UNSUBSCRIBE; the returned future is done when Redis confirms it."""
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmations.setdefault(channel, deque()).append(confirmed)
        try:
            await send(channel)
        except BaseException:
            self._confirmations[channel].remove(confirmed)
            raise
        return confirmed

    async def close(self) -> None:
        """Stop reading and drop every subscription; the Redis client stays open (it belongs to the caller)."""
        tasks = [*self._tasks, *([self._reader] if self._reader else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._channels.clear()
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py

    async def _read(self) -> None:
        """Pull pub/sub messages forever; on a Redis error wait and retry (redis-py resubscribes on reconnect)."""
        delay = _RETRY_MIN
        while True:
            try:
                item = await self._pubsub.get_message(timeout=None)
            except Exception as exc:  # this task is the only reader: it must outlive any failure
                log.warning("psrpc: Redis pub/sub read failed, retrying in %.1f s: %r", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
                continue
            delay = _RETRY_MIN
            if item is not None:
                self._dispatch(item["type"], item["channel"].decode(), item["data"])

    def _dispatch(self, kind: str, channel: str, data: Any) -> None:
        if kind in ("subscribe", "unsubscribe"):
            waiting = self._confirmations.get(channel)
            if waiting:
                future = waiting.popleft()
                if not future.done():
                    future.set_result(None)
            if not waiting:
                self._confirmations.pop(channel, None)
            return
        local = self._channels.get(channel)
        if kind != "message" or local is None:
            return
        for subscription in list(local.plain):
            self._deliver(subscription, data)
        subscriber = local.next_queue_subscriber()
        if subscriber is not None:
            self._spawn(self._deliver_locked(subscriber, data))

    async def _deliver_locked(self, subscription: Subscription[Any], payload: bytes) -> None:
        key = base64.b64encode(hashlib.sha256(payload).digest()).decode()
        try:
            won = await self._redis.set(key, secrets.randbelow(1 << 63), ex=LOCK_SECONDS, nx=True)
        except RedisError as exc:
            log.warning("psrpc: queue lock on %s failed, message skipped: %s", subscription.channel, exc)
            return
        if won:
            self._deliver(subscription, payload)

    @staticmethod
    def _deliver(subscription: Subscription[Any], payload: bytes) -> None:
        """Hand a payload to one subscriber; its failure is logged, never allowed to stop the reader."""
        try:
            subscription.deliver(payload)
        except Exception:
            log.exception("psrpc: a subscriber of %s failed", subscription.channel)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
