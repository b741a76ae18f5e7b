"""TransferSIPParticipant without sockets: the REFER's outcomes, as the API and the cluster front see them."""

from __future__ import annotations

import asyncio

import pytest
from call_node import TO, CallNode, inbound_trunk, room_rule
from fake_sip import FakeCallerLeg, invite

from sipbridge.calls.errors import CallError

TARGET = "sip:+13105550111@pbx.test"


async def active_call(node: CallNode) -> tuple[FakeCallerLeg, asyncio.Task[None]]:
    caller = FakeCallerLeg(invite(TO))
    flow = node.receive(caller)
    participant = await node.room.until_joined()
    participant.agent_publishes()
    await participant.until_status("active")
    return caller, flow


def transfers(node: CallNode) -> dict[str, float]:
    stats = node.stats
    return {
        "total": sum(stats.transfers_total.values.values()),
        "succeeded": sum(stats.transfers_succeeded.values.values()),
        "failed": sum(stats.transfers_failed.values.values()),
    }


async def test_an_accepted_transfer_hangs_up_our_leg_and_the_participant_leaves() -> None:
    node = CallNode([inbound_trunk()], [room_rule()])
    caller, flow = await active_call(node)
    call = node.control.find_participant("room", node.room.last.spec.identity)
    transfer = asyncio.create_task(call.transfer(TARGET, play_dialtone=True, headers={"X-T": "1"}, within=30.0))
    await caller.until_sent(f"REFER {TARGET}")
    await node.rtp.last.until_frames_to_phone(100)  # the dial tone plays while the transferee dials
    caller.notify(200)
    done = await transfer
    assert (done.sip_status, done.sip_reason) == (200, "OK") and done.transfer_id.startswith("STR_")
    await flow
    await node.released()
    assert caller.sent[-1] == "BYE" and node.room.last.statuses[-1] == "hangup"
    assert transfers(node) == {"total": 1, "succeeded": 1, "failed": 0}
    assert node.terminated() == {("in", "success", "hangup"): 1.0}


async def test_a_declined_transfer_fails_with_its_status_and_the_call_goes_on() -> None:
    node = CallNode([inbound_trunk()], [room_rule()])
    caller, flow = await active_call(node)
    call = node.control.find_call(node.room.last.spec.attributes["sip.callID"])
    transfer = asyncio.create_task(call.transfer(TARGET, play_dialtone=False, headers={}, within=30.0))
    await caller.until_sent(f"REFER {TARGET}")
    caller.notify(603)
    with pytest.raises(CallError) as failed:
        await transfer
    assert failed.value.sip_status == 603 and not caller.ended
    assert transfers(node) == {"total": 1, "succeeded": 0, "failed": 1}
    caller.hang_up()
    await flow
    await node.released()


async def test_a_transfer_never_notified_times_out_with_408() -> None:
    node = CallNode([inbound_trunk()], [room_rule()])
    caller, flow = await active_call(node)
    call = node.control.find_participant("room", node.room.last.spec.identity)
    with pytest.raises(CallError) as failed:
        await call.transfer(TARGET, play_dialtone=False, headers={}, within=20.0)
    assert failed.value.sip_status == 408 and not caller.ended
    caller.hang_up()
    await flow
    await node.released()


async def test_the_call_ending_during_a_transfer_aborts_it() -> None:
    node = CallNode([inbound_trunk()], [room_rule()])
    caller, flow = await active_call(node)
    call = node.control.find_participant("room", node.room.last.spec.identity)
    transfer = asyncio.create_task(call.transfer(TARGET, play_dialtone=False, headers={}, within=30.0))
    await caller.until_sent(f"REFER {TARGET}")
    caller.hang_up()
    with pytest.raises(CallError) as failed:
        await transfer
    assert failed.value.code == "aborted"
    await flow
    await node.released()


async def test_one_transfer_at_a_time() -> None:
    node = CallNode([inbound_trunk()], [room_rule()])
    caller, flow = await active_call(node)
    call = node.control.find_participant("room", node.room.last.spec.identity)
    first = asyncio.create_task(call.transfer(TARGET, play_dialtone=False, headers={}, within=30.0))
    await caller.until_sent(f"REFER {TARGET}")
    with pytest.raises(CallError) as refused:
        await call.transfer(TARGET, play_dialtone=False, headers={}, within=30.0)
    assert refused.value.code == "failed_precondition"
    caller.notify(200)
    await first
    await flow
    await node.released()


async def test_an_unknown_participant_is_not_found() -> None:
    node = CallNode()
    with pytest.raises(CallError) as missing:
        node.control.find_participant("room", "nobody")
    assert missing.value.code == "not_found"
