"""Waiting for what a call does in LiveKit: a room to appear, a participant to join, its call status."""

from __future__ import annotations

import asyncio
import time

from livekit import api


async def wait_for_room(client: api.LiveKitAPI, prefix: str, within: float = 20.0) -> str:
    """The name of the first room whose name starts with `prefix`."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        rooms = await client.room.list_rooms(api.ListRoomsRequest())
        for room in rooms.rooms:
            if room.name.startswith(prefix):
                return room.name
        await asyncio.sleep(0.2)
    raise AssertionError(f"no room named {prefix}... appeared within {within} s")


async def wait_for_participant(
    client: api.LiveKitAPI, room: str, identity: str, within: float = 20.0
) -> api.ParticipantInfo:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        listed = await client.room.list_participants(api.ListParticipantsRequest(room=room))
        for participant in listed.participants:
            if participant.identity == identity:
                return participant
        await asyncio.sleep(0.2)
    raise AssertionError(f"participant {identity} did not join {room} within {within} s")


async def wait_for_call_status(
    client: api.LiveKitAPI, room: str, identity: str, status: str, within: float = 30.0
) -> api.ParticipantInfo:
    """The SIP participant once its ``sip.callStatus`` is `status` (``active``: the bridge answered and the call
    is up), as the room sees it: the bridge sets the attribute after the fact, so a test waits for it."""
    deadline = time.monotonic() + within
    while True:
        participant = await wait_for_participant(client, room, identity, within)
        if participant.attributes.get("sip.callStatus") == status:
            return participant
        if time.monotonic() > deadline:
            raise AssertionError(f"{identity} in {room} not {status} within {within} s: {dict(participant.attributes)}")
        await asyncio.sleep(0.2)


async def wait_gone(client: api.LiveKitAPI, room: str, identity: str, within: float = 20.0) -> None:
    """Until `identity` is no longer listed in `room` (the server lists a participant a moment after it left)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        listed = await client.room.list_participants(api.ListParticipantsRequest(room=room))
        if all(p.identity != identity for p in listed.participants):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{identity} is still in {room} after {within} s")
