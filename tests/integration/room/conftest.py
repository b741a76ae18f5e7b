"""Fixtures of the room tests: the room transport under test (every test runs on each unless it names one), a
maker of participants on it, an API client and an SDK participant at the far end of the room."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import cast

import pytest
from harness.bridge import api_client
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.room_side import FAR_END, Participants
from livekit import api

from sipbridge.room import ROOM_TRANSPORTS, RoomTransport, create_participant


@pytest.fixture(params=ROOM_TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> RoomTransport:
    return cast(RoomTransport, request.param)


@pytest.fixture
def participant(transport: RoomTransport) -> Participants:
    """Makes participants on the test's transport."""
    return functools.partial(create_participant, transport)


@pytest.fixture
async def lkapi(livekit_server: LiveKitServer) -> AsyncIterator[api.LiveKitAPI]:
    async with api_client(livekit_server) as client:
        yield client


@pytest.fixture
async def far_end(livekit_server: LiveKitServer, tmp_room: str) -> AsyncIterator[TestParticipant]:
    async with TestParticipant(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, tmp_room, FAR_END
    ) as participant:
        yield participant
