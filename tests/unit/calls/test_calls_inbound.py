"""The inbound flow without sockets, on a virtual clock: ringing and answer, early media, PIN, digest
admission, and every refusal, each leaving nothing behind (`CallNode.released`)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from call_node import TO, CallNode, inbound_trunk, room_rule
from fake_sip import FakeCallerLeg, caller_sdp, invite
from livekit.protocol.sip import SIPDispatchRuleInfo, SIPInboundTrunkInfo, SIPStatusCode

from sipbridge.room import EndReason
from sipbridge.sip.auth import DigestCredentials, NonceUse
from sipbridge.sip.message import Request

TRUNK = inbound_trunk(headers={"X-Bridge": "sipbridge"})
RULE = room_rule()
AUTH_TRUNK = inbound_trunk(auth_username="alice", auth_password="s3cret", auth_realm="carrier")


def now() -> float:
    return asyncio.get_running_loop().time()


async def answered_call(node: CallNode, caller: FakeCallerLeg) -> asyncio.Task[None]:
    """A call rung and answered: the participant is in the room, ``active``."""
    flow = node.receive(caller)
    participant = await node.room.until_joined()
    participant.agent_publishes()
    await participant.until_status("active")
    return flow


async def test_rings_in_the_room_and_answers_when_someone_publishes() -> None:
    node = CallNode([TRUNK], [RULE])
    caller = FakeCallerLeg(invite(TO))
    flow = node.receive(caller)
    participant = await node.room.until_joined()
    assert caller.sent == ["180"] and participant.statuses == ["ringing"]
    assert participant.spec.room == "room" and participant.spec.attributes["sip.trunkID"] == "ST_in"
    assert participant.rate == 8000  # PCMU offered: the room side runs at its rate, nothing resampled
    participant.agent_publishes()
    await participant.until_status("active")
    assert caller.sent == ["180", "200"] and caller.answer_headers == {"X-Bridge": "sipbridge"}
    assert node.rtp.last.configs[-1].codec == "PCMU"
    caller.hang_up()
    await flow
    await node.released()
    assert participant.statuses == ["ringing", "active", "hangup"]
    assert node.terminated() == {("in", "success", "hangup"): 1.0}
    assert node.packets_counted() == 100  # the call's RTP packets, folded once


async def test_keeps_ringing_every_ringing_interval() -> None:
    node = CallNode([TRUNK], [RULE], sip_ringing_interval=2.0)
    caller = FakeCallerLeg(invite(TO))
    flow = node.receive(caller)
    await caller.changes.until(lambda: caller.sent.count("180") == 4)
    assert now() == pytest.approx(6.0)
    caller.hang_up("cancel")
    await flow
    await node.released()
    assert node.terminated() == {("in", "success", "cancelled"): 1.0}


async def test_early_media_rings_with_183_and_our_ringback() -> None:
    node = CallNode([TRUNK], [RULE], inbound_early_media=True)
    caller = FakeCallerLeg(invite(TO))
    flow = node.receive(caller)
    participant = await node.room.until_joined()
    rtp = node.rtp.last
    await rtp.until_frames_to_phone(10)  # the ringback plays before anyone answers
    assert caller.sent == ["183"]  # no 180 repeated: the ringback tone is in the 183's media
    participant.agent_publishes()
    await caller.until_sent("200")
    caller.hang_up()
    await flow
    await node.released()


async def test_ringing_timeout_refuses_with_the_trunks_status() -> None:
    trunk = inbound_trunk(ringing_timeout=5, ringing_timeout_status=SIPStatusCode.SIP_STATUS_BUSY_HERE)
    node = CallNode([trunk], [RULE])
    caller = FakeCallerLeg(invite(TO))
    await node.receive(caller)
    assert caller.sent[-1] == "486" and now() == pytest.approx(5.0)
    assert caller.reject_headers == {"Reason": 'SIP;cause=486;text="ringing timeout"'}
    await node.released()
    assert node.terminated() == {("in", "client_error", "no-answer"): 1.0}


async def test_a_caller_cancelling_while_ringing_takes_the_participant_out() -> None:
    node = CallNode([TRUNK], [RULE])
    caller = FakeCallerLeg(invite(TO))
    flow = node.receive(caller)
    participant = await node.room.until_joined()
    caller.hang_up("cancel")
    await flow
    await node.released()
    assert "200" not in caller.sent and participant.statuses == ["ringing", "hangup"]
    assert node.terminated() == {("in", "success", "cancelled"): 1.0}


async def test_the_room_going_away_while_ringing_refuses_the_call() -> None:
    node = CallNode([TRUNK], [RULE])
    caller = FakeCallerLeg(invite(TO))
    flow = node.receive(caller)
    participant = await node.room.until_joined()
    participant.remove(EndReason.ROOM_DELETED)
    await flow
    await node.released()
    assert caller.sent == ["180", "480"]
    assert node.terminated() == {("in", "success", "removed"): 1.0}


async def test_end_call_rpc_while_ringing_refuses_with_the_agents_headers() -> None:
    node = CallNode([TRUNK], [RULE])
    caller = FakeCallerLeg(invite(TO))
    flow = node.receive(caller)
    participant = await node.room.until_joined()
    assert await participant.perform_rpc("lk.sip.EndCall", '{"headers": {"X-Why": "agent"}}') == "{}"
    await flow
    await node.released()
    assert caller.sent == ["180", "480"] and caller.reject_headers == {"X-Why": "agent"}
    assert node.terminated() == {("in", "success", "rpc"): 1.0}


async def test_get_remote_headers_reads_the_callers_invite() -> None:
    node = CallNode([TRUNK], [RULE])
    caller = FakeCallerLeg(invite(TO, headers={"X-Customer": "42"}))
    flow = await answered_call(node, caller)
    participant = node.room.last
    answer = await participant.perform_rpc("lk.sip.GetRemoteHeaders", '{"include": ["x-customer"]}')
    assert answer == '{"headers": {"X-Customer": "42"}}'
    caller.hang_up()
    await flow
    await node.released()


async def test_audio_and_dtmf_cross_both_ways() -> None:
    node = CallNode([TRUNK], [RULE])
    caller = FakeCallerLeg(invite(TO))
    flow = await answered_call(node, caller)
    participant, rtp = node.room.last, node.rtp.last
    caller.press("4")  # SIP INFO
    await participant.changes.until(lambda: participant.dtmf_published == ["4"])
    rtp.phone_digit("2")  # RFC 4733
    await participant.changes.until(lambda: participant.dtmf_published == ["4", "2"])
    participant.agent_presses("9")
    assert [digits for _, digits in rtp.digits_sent] == ["9"]
    await participant.changes.until(lambda: participant.frames >= 5)  # the caller's audio reaches the room
    caller.hang_up()
    await flow
    await node.released()


# -- PIN ---------------------------------------------------------------------------------------------------------


async def test_the_right_pin_joins_the_room_active() -> None:
    node = CallNode([TRUNK], [room_rule("secret", pin="1234")])
    caller = FakeCallerLeg(invite(TO))
    flow = node.receive(caller)
    await caller.until_sent("200")  # answered first, to prompt
    assert not node.room.participants
    caller.press("1234#")
    participant = await node.room.until_joined()
    assert participant.spec.room == "secret" and participant.statuses == ["active"]
    assert [(f.called_number, d) for f, d in zip(node.decider.asked, ("", "1234"), strict=True)] == [
        (TO, ""), (TO, "1234")
    ]  # fmt: skip
    caller.hang_up()
    await flow
    await node.released()
    assert node.terminated() == {("in", "success", "hangup"): 1.0}


async def test_a_wrong_pin_is_told_and_hung_up() -> None:
    node = CallNode([TRUNK], [room_rule("secret", pin="1234")])
    caller = FakeCallerLeg(invite(TO))
    flow = node.receive(caller)
    await caller.until_sent("200")
    caller.press("99#")
    await flow
    await node.released()
    assert caller.sent == ["200", "BYE"] and not node.room.participants
    assert node.rtp.last.frames_to_phone > 100  # both prompts played out before the BYE
    assert node.terminated() == {("in", "client_error", "wrong-pin"): 1.0}


async def test_no_pin_within_the_digit_timeout_is_a_wrong_pin() -> None:
    node = CallNode([TRUNK], [room_rule("secret", pin="1234")])
    caller = FakeCallerLeg(invite(TO))
    await node.receive(caller)
    await node.released()
    assert caller.sent == ["200", "BYE"] and now() > 30.0
    assert node.terminated() == {("in", "client_error", "wrong-pin"): 1.0}


async def test_a_caller_hanging_up_during_the_pin_ends_the_call() -> None:
    node = CallNode([TRUNK], [room_rule("secret", pin="1234")])
    caller = FakeCallerLeg(invite(TO))
    flow = node.receive(caller)
    await caller.until_sent("200")
    caller.press("12")
    caller.hang_up()
    await flow
    await node.released()
    assert node.terminated() == {("in", "success", "hangup"): 1.0}


# -- digest admission ------------------------------------------------------------------------------------------


def digest_invite(username: str = "alice") -> Request:
    return invite(TO, headers={"Authorization": f'Digest username="{username}", realm="carrier", nonce="n"'})


async def test_a_trunk_with_credentials_challenges_first() -> None:
    node = CallNode([AUTH_TRUNK], [RULE])
    caller = FakeCallerLeg(invite(TO))
    await node.receive(caller)
    await node.released()
    assert caller.sent == ["401"] and caller.challenge_realm == "carrier"
    assert node.invite_errors() == {("in", "unauthorized"): 1.0}


async def test_the_right_digest_answer_is_let_in() -> None:
    node = CallNode([AUTH_TRUNK], [RULE])
    caller = FakeCallerLeg(digest_invite(), digest=DigestCredentials("alice", "s3cret"))
    flow = node.receive(caller)
    await caller.until_sent("180")
    caller.hang_up("cancel")
    await flow
    await node.released()


@pytest.mark.parametrize("hide", [False, True])
async def test_a_wrong_password_is_refused_or_dropped(hide: bool) -> None:
    node = CallNode([AUTH_TRUNK], [RULE], hide_inbound_port=hide)
    caller = FakeCallerLeg(digest_invite(), digest=DigestCredentials("alice", "guess"))
    await node.receive(caller)
    await node.released()
    assert caller.sent == (["dropped"] if hide else ["403"])
    if not hide:
        assert caller.reject_headers == {"Reason": 'SIP;cause=403;text="authentication failed"'}


async def test_a_replayed_digest_answer_is_challenged_again() -> None:
    node = CallNode([AUTH_TRUNK], [RULE])
    use = NonceUse("n", 1, 1e12)
    first = FakeCallerLeg(digest_invite(), digest=DigestCredentials("alice", "s3cret"), nonce=use)
    flow = node.receive(first)
    await first.until_sent("180")
    replay = FakeCallerLeg(digest_invite(), digest=DigestCredentials("alice", "s3cret"), nonce=use)
    await node.receive(replay)
    assert replay.sent == ["401 stale"]
    first.hang_up("cancel")
    await flow
    await node.released()


async def test_password_guessing_is_refused_unchecked_after_ten_failures() -> None:
    node = CallNode([AUTH_TRUNK], [RULE])
    for _ in range(10):
        await node.receive(FakeCallerLeg(digest_invite(), digest=DigestCredentials("alice", "guess")))
    right = FakeCallerLeg(digest_invite(), digest=DigestCredentials("alice", "s3cret"))
    await node.receive(right)
    await node.released()
    assert right.sent == ["403"] and right.reject_headers is not None
    assert "too many" in right.reject_headers["Reason"]
    assert node.invite_errors()[("in", "flood")] == 1.0


# -- refusals ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trunks", "rules", "hide", "sent", "reason"),
    [
        ([inbound_trunk(numbers=["+1999"])], [RULE], False, ["404"], "no-trunk"),
        ([TRUNK], [], False, ["404"], "no-rule"),
        ([inbound_trunk(numbers=["+1999"])], [RULE], True, ["dropped"], "no-trunk"),
    ],
)
async def test_calls_nobody_takes_are_refused(
    trunks: list[SIPInboundTrunkInfo], rules: list[SIPDispatchRuleInfo], hide: bool, sent: list[str], reason: str
) -> None:
    node = CallNode(trunks, rules, hide_inbound_port=hide)
    caller = FakeCallerLeg(invite(TO))
    await node.receive(caller)
    await node.released()
    assert caller.sent == sent and not node.room.participants and not node.rtp.sessions
    assert node.terminated() == {("in", "client_error", reason): 1.0}


async def test_max_active_calls_refuses_with_503() -> None:
    node = CallNode([TRUNK], [RULE], max_active_calls=1)
    first = FakeCallerLeg(invite(TO))
    flow = node.receive(first)
    await first.until_sent("180")
    second = FakeCallerLeg(invite(TO))
    await node.receive(second)
    assert second.sent == ["503"]
    first.hang_up("cancel")
    await flow
    await node.released()
    assert node.terminated()[("in", "client_error", "quota-exceeded")] == 1.0


async def test_a_draining_node_refuses_with_503() -> None:
    node = CallNode([TRUNK], [RULE])
    node.services.capacity.drain()
    caller = FakeCallerLeg(invite(TO))
    await node.receive(caller)
    await node.released()
    assert caller.sent == ["503"]
    assert node.terminated() == {("in", "server_error", "shutdown"): 1.0}


async def test_no_free_rtp_port_refuses_with_503() -> None:
    node = CallNode([TRUNK], [RULE])
    held = [node.ports.allocate() for _ in range(node.ports.capacity)]
    caller = FakeCallerLeg(invite(TO))
    await node.receive(caller)
    for port in held:
        node.ports.release(port)
    await node.released()
    assert caller.sent == ["503"]
    assert node.terminated() == {("in", "server_error", "media-failed"): 1.0}


async def test_an_offer_without_a_common_codec_is_refused_with_488() -> None:
    node = CallNode([TRUNK], [RULE])
    caller = FakeCallerLeg(invite(TO, sdp=caller_sdp(["opus"])))
    await node.receive(caller)
    await node.released()
    assert caller.sent == ["488"]
    assert node.terminated() == {("in", "client_error", "no-common-codec"): 1.0}


async def test_a_room_that_refuses_the_join_refuses_the_call() -> None:
    node = CallNode([TRUNK], [RULE])
    node.room.refuse_joins = True
    caller = FakeCallerLeg(invite(TO))
    await node.receive(caller)
    await node.released()
    assert caller.sent == ["180", "503"]
    assert node.terminated() == {("in", "server_error", "participant-failed"): 1.0}


# -- media ---------------------------------------------------------------------------------------------------------


async def test_an_invite_without_an_offer_gets_ours_and_the_room_waits_at_its_default_rate() -> None:
    node = CallNode([TRUNK], [RULE])
    caller = FakeCallerLeg(invite(TO, sdp=b""))
    flow = await answered_call(node, caller)
    assert node.room.last.rate == 16000  # the codec was not known when the room was joined
    assert node.rtp.last.configs[-1].codec == "PCMU"  # settled by the ACK's answer
    await node.room.last.changes.until(lambda: node.room.last.frames >= 5)  # resampled on the way
    caller.hang_up()
    await flow
    await node.released()


async def test_a_reinvite_moves_the_stream_and_a_hold_expects_no_media() -> None:
    node = CallNode([TRUNK], [RULE])
    caller = FakeCallerLeg(invite(TO))
    flow = await answered_call(node, caller)
    rtp = node.rtp.last
    assert caller.negotiated is not None
    caller.update_media(replace(caller.negotiated, direction="inactive", remote_port=42000))
    await rtp.changes.until(lambda: len(rtp.configs) == 2)
    assert rtp.remotes[-1] == (caller.negotiated.remote_address, 42000) and not rtp.configs[-1].expects_media
    rtp.go_silent()
    await node.let_time_pass(120.0)  # far beyond the media timeout: a held call is not hung up
    assert not caller.ended
    caller.hang_up()
    await flow
    await node.released()
