"""The outbound flow (CreateSIPParticipant) without sockets, on a virtual clock: dialling, ringing, answer, DTMF,
refusals by the callee, the ringing timeout, and the room or an agent ending the call while it dials."""

from __future__ import annotations

import asyncio

import pytest
from call_node import CallNode, outbound_plan
from fake_rtp import DIGIT_SECONDS

from sipbridge.calls.bridged import DTMF_PAUSE
from sipbridge.calls.errors import CallError
from sipbridge.room import EndReason


def now() -> float:
    return asyncio.get_running_loop().time()


async def test_dials_rings_and_is_answered() -> None:
    node = CallNode()
    created = await node.place(outbound_plan(headers={"X-Order": "7"}))
    participant = node.room.last
    assert created.participant_id == participant.sid and created.sip_call_id == "SCL_out"
    assert participant.statuses == ["dialing"] and participant.spec.room == "out"
    callee = await node.dialler.until_dialled()
    assert callee.dialled.target == "sip:+13105550199@carrier.test"
    assert callee.dialled.headers["X-Order"] == "7" and callee.dialled.destination is not None
    callee.ring()
    await participant.until_status("ringing")
    callee.answer()
    await participant.until_status("active")
    assert participant.attributes["sip.callIDFull"] == callee.call_id
    assert node.rtp.last.configs[-1].codec == "PCMU"
    callee.hang_up()
    await node.released()
    assert participant.statuses == ["dialing", "ringing", "active", "hangup"]
    assert node.terminated() == {("out", "success", "hangup"): 1.0}


async def test_wait_until_answered_returns_once_the_callee_answers() -> None:
    node = CallNode()
    placing = asyncio.create_task(node.place(outbound_plan(wait_until_answered=True)))
    callee = await node.dialler.until_dialled()
    assert not placing.done()  # nobody answered yet
    callee.answer()
    created = await placing
    assert created.participant_identity == "callee"
    node.room.last.remove()
    await node.released()
    assert callee.sent == ["BYE"]
    assert node.terminated() == {("out", "success", "removed"): 1.0}


async def test_a_busy_callee_fails_the_request_with_its_status() -> None:
    node = CallNode()
    placing = asyncio.create_task(node.place(outbound_plan(wait_until_answered=True)))
    callee = await node.dialler.until_dialled()
    callee.refuse(486, "Busy Here")
    with pytest.raises(CallError) as failed:
        await placing
    assert (failed.value.code, failed.value.sip_status) == ("resource_exhausted", 486)  # LiveKit's code for 486
    await node.released()
    assert node.room.last.left
    assert node.terminated() == {("out", "client_error", "busy"): 1.0}
    assert node.invite_errors() == {("out", "486-BusyHere"): 1.0}


async def test_nobody_answering_within_the_ringing_timeout_cancels() -> None:
    node = CallNode()
    placing = asyncio.create_task(node.place(outbound_plan(wait_until_answered=True, ringing_timeout=12.0)))
    callee = await node.dialler.until_dialled()
    callee.ring()
    with pytest.raises(CallError) as failed:
        await placing
    assert failed.value.sip_status == 408 and now() == pytest.approx(12.0)
    assert callee.sent == ["CANCEL"]
    await node.released()
    assert node.terminated() == {("out", "client_error", "no-answer"): 1.0}


@pytest.mark.parametrize(("ending", "termination"), [
    ("participant leaves", ("out", "client_error", "canceled")),
    ("lk.sip.EndCall", ("out", "success", "rpc")),
])  # fmt: skip
async def test_the_room_ending_the_call_while_it_dials_cancels_it(ending: str, termination: tuple[str, ...]) -> None:
    node = CallNode()
    await node.place(outbound_plan())
    participant = node.room.last
    callee = await node.dialler.until_dialled()
    if ending == "participant leaves":
        participant.remove(EndReason.REMOVED)
    else:
        await participant.perform_rpc("lk.sip.EndCall", "{}")
    await node.released()
    assert callee.sent == ["CANCEL"]
    assert node.terminated() == {termination: 1.0}


async def test_the_dtmf_string_goes_out_digit_run_by_run_after_the_answer() -> None:
    node = CallNode()
    await node.place(outbound_plan(dtmf="12w3"))
    participant = node.room.last
    callee = await node.dialler.until_dialled()
    callee.answer()
    answered_at = now()
    await participant.until_status("active")
    rtp = node.rtp.last
    assert participant.statuses == ["dialing", "automation", "active"]
    # "3" waits for "12" to be sent (the session says so), then for the 'w'
    assert rtp.digits_sent == [
        (pytest.approx(answered_at), "12"), (pytest.approx(answered_at + 2 * DIGIT_SECONDS + DTMF_PAUSE), "3")
    ]  # fmt: skip
    callee.hang_up()
    await node.released()


async def test_early_media_goes_into_the_room_before_the_answer() -> None:
    node = CallNode()
    await node.place(outbound_plan(play_dialtone=True))
    participant = node.room.last
    callee = await node.dialler.until_dialled()
    callee.ring(early_media=True)
    await participant.until_status("ringing")
    rtp = node.rtp.last
    assert len(rtp.configs) == 1  # media started on the 183's answer
    callee.answer()
    await participant.until_status("active")
    callee.hang_up()
    await node.released()


async def test_a_full_node_refuses_before_dialling() -> None:
    node = CallNode(max_active_calls=1)
    await node.place(outbound_plan())
    await node.dialler.until_dialled()
    with pytest.raises(CallError) as refused:
        await node.place(outbound_plan(lk_call_id="SCL_second"))
    assert refused.value.code == "unavailable" and "max_active_calls" in refused.value.message
    assert len(node.dialler.calls) == 1 and len(node.room.participants) == 1
    node.room.last.remove()
    await node.released()


async def test_a_room_that_refuses_the_join_fails_the_request_undialled() -> None:
    node = CallNode()
    node.room.refuse_joins = True
    with pytest.raises(CallError) as refused:
        await node.place(outbound_plan())
    assert refused.value.code == "unavailable" and not node.dialler.calls
    await node.released()
    assert node.terminated() == {("out", "server_error", "participant-failed"): 1.0}


async def test_a_media_connection_failing_after_admission_cancels_the_invite() -> None:
    node = CallNode()
    node.room.join_seconds, node.room.media_fails = 0.5, True
    with pytest.raises(CallError) as failed:
        await node.place(outbound_plan())
    assert failed.value.code == "unavailable" and "ICE failed" in failed.value.message
    [callee] = node.dialler.calls
    assert callee.sent == ["CANCEL"]
    await node.released()
    assert node.terminated() == {("out", "server_error", "participant-failed"): 1.0}


async def test_the_callee_rings_while_the_participant_joins() -> None:
    """The INVITE does not wait for the room: what the callee says meanwhile is acted on once joined, in order."""
    node = CallNode()
    node.room.join_seconds = 1.0
    started = now()
    placing = asyncio.create_task(node.place(outbound_plan(wait_until_answered=True)))
    callee = await node.dialler.until_dialled()
    assert now() == started and not node.room.last.joined  # dialled once admitted, not once joined
    callee.ring(early_media=True)
    callee.answer()
    created = await placing
    participant = node.room.last
    assert now() - started >= 1.0 and created.participant_id == participant.sid
    assert participant.statuses == ["dialing", "ringing", "active"]
    assert node.rtp.last.configs[-1].codec == "PCMU"
    callee.hang_up()
    await node.released()
    assert node.terminated() == {("out", "success", "hangup"): 1.0}


async def test_a_trunk_address_that_does_not_resolve_fails_with_503() -> None:
    node = CallNode()
    node.dialler.unresolvable.add("carrier.test")
    with pytest.raises(CallError) as failed:
        await node.place(outbound_plan(wait_until_answered=True))
    assert failed.value.sip_status == 503 and "cannot resolve" in failed.value.message
    await node.released()
