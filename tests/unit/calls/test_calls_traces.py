"""The call flows' side of the inspector, without sockets: each flow claims its call's trace in the node's book,
fills in what it learns (trunk, rule, room, codec, status, how it ended), keeps the trunk's password and the PIN's
digits out of it, and ends it on every way out."""

from __future__ import annotations

import asyncio

import pytest
from call_node import TO, CallNode, inbound_trunk, outbound_plan, room_rule
from fake_sip import FakeCallerLeg, invite
from livekit.protocol.sip import SIPInboundTrunkInfo

from sipbridge.calls.errors import CallError
from sipbridge.sip.auth import DigestCredentials

TRUNK = inbound_trunk()
RULE = room_rule()
AUTH_TRUNK = inbound_trunk(auth_username="alice", auth_password="s3cret", auth_realm="carrier")
FROM = "+13105550100"


async def test_an_answered_call_fills_in_its_trace_and_ends_it() -> None:
    node = CallNode([TRUNK], [RULE])
    book = node.services.traces
    caller = FakeCallerLeg(invite(TO, FROM))
    flow = node.receive(caller)
    participant = await node.room.until_joined()
    trace = book.get(caller.call_id)
    assert trace is not None and trace.claimed and book.active() == [trace]
    assert trace.summary.status == "ringing"
    participant.agent_publishes()
    await participant.until_status("active")
    caller.hang_up()
    await flow
    await node.released()
    s = trace.summary
    assert (s.direction, s.trunk_id, s.rule_id) == ("inbound", "ST_in", "SDR_room")
    assert (s.from_number, s.to_number) == (FROM, TO)
    assert (s.room, s.participant, s.codec, s.status) == ("room", participant.spec.identity, "PCMU", "hangup")
    assert s.ending.startswith("the phone side ended the call")
    assert book.ended() == [trace] and not book.active() and book.get(s.lk_call_id) is trace


@pytest.mark.parametrize(
    ("trunk", "hide", "password", "ending"),
    [
        (AUTH_TRUNK, False, None, "challenged: "),
        (AUTH_TRUNK, False, "guess", "refused: authentication failed"),
        (AUTH_TRUNK, True, "guess", "refused: authentication failed (dropped without an answer)"),
        (inbound_trunk(numbers=["+1999"]), False, None, "refused: "),
    ],
    ids=["challenge", "wrong password", "wrong password, hidden", "no trunk"],
)
async def test_a_refused_invite_says_why_and_keeps_the_trunks_password_out(
    trunk: SIPInboundTrunkInfo, hide: bool, password: str | None, ending: str
) -> None:
    node = CallNode([trunk], [RULE], hide_inbound_port=hide)
    if password is None:
        caller = FakeCallerLeg(invite(TO))
    else:
        request = invite(TO, headers={"Authorization": 'Digest username="alice", realm="carrier", nonce="n"'})
        caller = FakeCallerLeg(request, digest=DigestCredentials("alice", password))
    await node.receive(caller)
    await node.released()
    trace = node.services.traces.get(caller.call_id)
    assert trace is not None and trace.ended and trace.summary.ending.startswith(ending)
    assert trace.secrets == ([b"s3cret"] if trunk is AUTH_TRUNK else [])  # masked in whatever the tap files


async def test_a_full_node_refuses_and_ends_the_trace_at_once() -> None:
    node = CallNode([TRUNK], [RULE])
    node.services.capacity.drain()
    caller = FakeCallerLeg(invite(TO))
    await node.receive(caller)
    await node.released()
    trace = node.services.traces.get(caller.call_id)
    assert trace is not None and trace.ended and trace.summary.ending == "refused: the node is draining"


async def test_digits_are_masked_while_the_pin_is_collected() -> None:
    node = CallNode([TRUNK], [room_rule("secret", pin="1234")])
    caller = FakeCallerLeg(invite(TO))
    flow = node.receive(caller)
    await caller.until_sent("200")
    trace = node.services.traces.get(caller.call_id)
    assert trace is not None and trace.pin_entry  # SIP INFO digits masked from the answer on
    caller.press("1234#")
    participant = await node.room.until_joined()
    assert not trace.pin_entry and trace.summary.rule_id == "SDR_secret"
    assert participant.statuses == ["active"]
    caller.hang_up()
    await flow
    await node.released()


async def test_an_outbound_call_claims_the_trace_of_its_invite() -> None:
    node = CallNode()
    placing = asyncio.create_task(
        node.place(outbound_plan(wait_until_answered=True, username="bob", password="dial-secret"))
    )
    callee = await node.dialler.until_dialled()
    callee.refuse(486, "Busy Here")
    with pytest.raises(CallError) as failed:
        await placing
    await node.released()
    trace = node.services.traces.get(callee.call_id)
    assert trace is not None and trace.ended and trace.secrets == [b"dial-secret"]
    s = trace.summary
    assert (s.direction, s.trunk_id) == ("outbound", "ST_out")
    assert (s.from_number, s.to_number) == ("+15105550100", "+13105550199")
    assert s.ending == failed.value.message and s.status == "hangup"
