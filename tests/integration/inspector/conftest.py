"""Fixtures for inspector tests: a bridge with its inspector on a free loopback port, and a client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from harness.bridge import api_client
from harness.inspector import InspectedBridge, InspectorClient, admin_token
from harness.processes import LiveKitServer
from livekit import api


@pytest.fixture
def inspected_bridge(tmp_path: Path, livekit_server: LiveKitServer) -> Iterator[InspectedBridge]:
    with InspectedBridge(tmp_path / "bridge", livekit=livekit_server) as bridge:
        yield bridge


@pytest.fixture
async def inspector(inspected_bridge: InspectedBridge) -> AsyncIterator[InspectorClient]:
    client = InspectorClient(
        inspected_bridge.inspector_url, admin_token(inspected_bridge.api_key, inspected_bridge.api_secret)
    )
    yield client
    await client.close()


@pytest.fixture
async def bridge_api(inspected_bridge: InspectedBridge) -> AsyncIterator[api.LiveKitAPI]:
    async with api_client(inspected_bridge) as client:
        yield client
