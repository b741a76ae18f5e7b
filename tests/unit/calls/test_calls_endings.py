"""Every way an answered call ends, and what each must let go of: the RTP port back to the allocator, the
participant out of its room, the flows' tasks gone, no call left active or registered, the termination and
the call's RTP packets counted once in the Go service's metrics (`CallNode.released`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from call_node import TO, CallNode, inbound_trunk, room_rule
from fake_room import FakeParticipant
from fake_rtp import FakeRtp
from fake_sip import FakeCallerLeg, invite
from google.protobuf.duration_pb2 import Duration
from livekit.protocol.sip import SIPMediaConfig

from sipbridge.room import EndReason

MEDIA_TIMEOUT = 8.0
MAX_CALL_DURATION = 60.0
TRUNK = inbound_trunk(
    max_call_duration=int(MAX_CALL_DURATION), media=SIPMediaConfig(media_timeout=Duration(seconds=int(MEDIA_TIMEOUT)))
)
RULE = room_rule(attributes={"team": "support"})


def now() -> float:
    return asyncio.get_running_loop().time()


async def active_call(node: CallNode, caller: FakeCallerLeg) -> asyncio.Task[None]:
    flow = node.receive(caller)
    participant = await node.room.until_joined()
    participant.agent_publishes()
    await participant.until_status("active")
    return flow


Ending = Callable[[FakeCallerLeg, FakeParticipant, FakeRtp], Awaitable[float]]
"""Ends the call as the test names it; returns when the bridge should hang up (the loop's clock)."""


async def caller_bye(caller: FakeCallerLeg, participant: FakeParticipant, rtp: FakeRtp) -> float:
    caller.hang_up()
    return now()


def room_ends(reason: EndReason) -> Ending:
    async def end(caller: FakeCallerLeg, participant: FakeParticipant, rtp: FakeRtp) -> float:
        participant.remove(reason)
        return now()

    return end


async def media_stops(caller: FakeCallerLeg, participant: FakeParticipant, rtp: FakeRtp) -> float:
    rtp.go_silent()
    return now() + MEDIA_TIMEOUT  # the trunk's media_timeout, not the default


async def duration_runs_out(caller: FakeCallerLeg, participant: FakeParticipant, rtp: FakeRtp) -> float:
    return rtp.started_at + MAX_CALL_DURATION


async def agent_ends(caller: FakeCallerLeg, participant: FakeParticipant, rtp: FakeRtp) -> float:
    await participant.perform_rpc("lk.sip.EndCall", '{"headers": {"X-Reason": "done"}}')
    return now()


ENDINGS: list[tuple[str, Ending, str | None, tuple[str, str]]] = [
    ("caller BYE", caller_bye, None, ("success", "hangup")),
    ("participant removed", room_ends(EndReason.REMOVED), "BYE", ("success", "removed")),
    ("room deleted", room_ends(EndReason.ROOM_DELETED), "BYE", ("success", "removed")),
    ("identity taken", room_ends(EndReason.REPLACED), "BYE", ("client_error", "duplicate-identity")),
    ("room connection lost", room_ends(EndReason.CONNECTION_LOST), "BYE", ("server_error", "room-disconnected")),
    ("media timeout", media_stops, "BYE", ("indeterminate", "media-timeout")),
    ("max call duration", duration_runs_out, "BYE", ("success", "max-call-duration")),
    ("lk.sip.EndCall", agent_ends, "BYE", ("success", "rpc")),
]


@pytest.mark.parametrize(("ending", "hang_up", "sent", "termination"), ENDINGS, ids=[e[0] for e in ENDINGS])
async def test_every_ending_releases_everything(
    ending: str, hang_up: Ending, sent: str | None, termination: tuple[str, str]
) -> None:
    node = CallNode([TRUNK], [RULE])
    caller = FakeCallerLeg(invite(TO))
    flow = await active_call(node, caller)
    participant, rtp = node.room.last, node.rtp.last
    expected_at = await hang_up(caller, participant, rtp)
    await caller.changes.until(lambda: caller.ended)
    assert now() == pytest.approx(expected_at, abs=0.05)
    await flow
    await node.released()
    assert caller.sent == ["180", "200", *([sent] if sent else [])]
    assert participant.left and rtp.closed
    if participant.end_reason is EndReason.LEFT:  # the bridge left: the room saw the call hang up first
        assert participant.statuses[-1] == "hangup"
    assert node.terminated() == {("in", *termination): 1.0}
    assert node.packets_counted() == 100
    if ending == "lk.sip.EndCall":
        assert caller.bye_headers == {"X-Reason": "done"}


async def test_an_invite_with_replaces_takes_the_call_over() -> None:
    node = CallNode([TRUNK], [room_rule()])
    first = FakeCallerLeg(invite(TO))
    flow = await active_call(node, first)
    participant = node.room.last
    second = FakeCallerLeg(invite(TO, from_="+13105550177"), replaces=first.handle)
    await node.receive(second)  # this flow hands its leg over and ends
    assert second.sent == ["200"] and first.sent[-1] == "BYE"
    assert not participant.left and participant.attributes["sip.callIDFull"] == second.call_id
    assert participant.attributes["sip.replaces"] == first.call_id
    first_rtp, second_rtp = node.rtp.sessions
    assert first_rtp.closed and not second_rtp.closed and second_rtp.configs  # the audio moved to the new leg
    second.hang_up()
    await flow
    await node.released()
    assert node.terminated() == {("in", "success", "replaced"): 1.0, ("in", "success", "hangup"): 1.0}


@pytest.mark.parametrize(("replaced", "status"), [("unknown", "481"), ("other trunk", "403")])
async def test_a_replaces_the_call_may_not_make_is_refused(replaced: str, status: str) -> None:
    other = inbound_trunk(sip_trunk_id="ST_other", numbers=["+15105550999"])
    node = CallNode([TRUNK, other], [room_rule(trunk_ids=["ST_in"]), room_rule("elsewhere", trunk_ids=["ST_other"])])
    first = FakeCallerLeg(invite(TO))
    flow = await active_call(node, first)
    target = first.handle if replaced == "other trunk" else FakeCallerLeg(invite(TO)).handle
    to = "+15105550999" if replaced == "other trunk" else TO
    second = FakeCallerLeg(invite(to), replaces=target)
    await node.receive(second)
    assert second.sent == [status] and not first.ended
    first.hang_up()
    await flow
    await node.released()
