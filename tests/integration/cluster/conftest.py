"""Fixtures for cluster tests: a server-SDK client of the livekit-server on Redis the nodes serve."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from harness.bridge import api_client
from harness.processes import LiveKitServer
from livekit import api


@pytest.fixture
async def server_api(livekit_server_redis: LiveKitServer) -> AsyncIterator[api.LiveKitAPI]:
    """livekit-server's API, where `lk` and agents manage trunks and calls in cluster mode."""
    server = livekit_server_redis
    async with api_client(server) as client:
        yield client
