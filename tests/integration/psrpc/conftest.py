"""Fixtures for psrpc tests: buses on the shared real Redis, one per simulated node."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis
from harness.processes import RedisServer

from sipbridge.psrpc import RedisBus


@pytest.fixture
async def new_bus(redis_server: RedisServer) -> AsyncIterator[Callable[[], Awaitable[RedisBus]]]:
    """Makes buses, each with its own Redis connections, as separate processes would have; all closed after."""
    opened: list[tuple[RedisBus, aioredis.Redis]] = []

    async def make() -> RedisBus:
        # Named, so that a test can find (and drop) its own connections among everyone's on the shared Redis.
        name = f"psrpc-test-{len(opened)}-{secrets.token_hex(4)}"
        client = aioredis.Redis(host=redis_server.host, port=redis_server.port, client_name=name)
        bus = RedisBus(client)
        opened.append((bus, client))
        return bus

    yield make
    for bus, client in opened:
        await bus.close()
        await client.aclose()
