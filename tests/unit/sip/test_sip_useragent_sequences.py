"""Random sequences of call actions, losses and time jumps between two sans-IO agents: whatever happens, no
internal error, and once time passes every call, transaction and timer is gone on both sides."""

from __future__ import annotations

import contextlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from test_sip_useragent import A_HOST, B_HOST, Net, media

from sipbridge.sip.call_state import CallState
from sipbridge.sip.errors import LocalProtocolError, SipParseError
from sipbridge.sip.events import CallEnded, CallHandle, IncomingCall
from sipbridge.sip.useragent import UserAgent

ACTIONS = (
    "invite", "ring", "progress", "answer", "reject", "bye_out", "bye_in", "cancel", "refer", "info",
    "hold", "lose_next", "wait_short", "wait_long",
)  # fmt: skip


class World:
    def __init__(self, seed: int) -> None:
        self.net = Net()
        self.rng = random.Random(seed)
        self.losing = 0
        self.net.drop = self._drop
        self.outbound: list[CallHandle] = []

    def _drop(self, data: bytes) -> bool:
        if self.losing:
            self.losing -= 1
            return True
        return False

    def inbound(self) -> list[CallHandle]:
        return [e.handle for e in self.net.events["b"] if isinstance(e, IncomingCall)]

    def pick(self, agent: UserAgent, calls: list[CallHandle]) -> CallHandle | None:
        live = [c for c in calls if agent.state(c) is not CallState.ENDED]
        return self.rng.choice(live) if live else None

    def act(self, action: str) -> None:
        net, now = self.net, self.net.now
        if action == "invite":
            self.outbound.append(
                net.a.invite(f"sip:bob@{B_HOST}:5070", media(A_HOST), now, from_uri=f"sip:alice@{A_HOST}")
            )
        elif action == "lose_next":
            self.losing += 1
        elif action == "wait_short":
            net.advance(now + 0.6)
        elif action == "wait_long":
            net.advance(now + 40.0)
        else:
            self._call_action(action, now)
        net.flush()

    def _call_action(self, action: str, now: float) -> None:
        a, b = self.net.a, self.net.b
        inbound, outbound = self.pick(b, self.inbound()), self.pick(a, self.outbound)
        # Actions in the wrong state are refused with LocalProtocolError (or a 488 for an impossible answer): fine.
        with contextlib.suppress(LocalProtocolError, SipParseError):
            if action == "ring" and inbound:
                b.ring(inbound, now)
            elif action == "progress" and inbound:
                b.progress(inbound, media(B_HOST), now)
            elif action == "answer" and inbound:
                b.answer(inbound, media(B_HOST), now)
            elif action == "reject" and inbound:
                b.reject(inbound, 486, now)
            elif action == "bye_in" and inbound:
                b.hangup(inbound, now)
            elif action == "bye_out" and outbound:
                a.hangup(outbound, now)
            elif action == "cancel" and outbound:
                a.cancel(outbound, now)
            elif action == "refer" and inbound:
                b.refer(inbound, "sip:carol@10.0.0.3", now)
            elif action == "info" and outbound:
                a.send_info(outbound, "3", now)
            elif action == "hold" and outbound:
                a.reinvite(outbound, now, direction="sendonly")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ACTIONS), max_size=40), st.integers(0, 2**16))
def test_random_call_sequences_leave_nothing_behind(actions: list[str], seed: int) -> None:
    world = World(seed)
    for action in actions:
        world.act(action)
    for call in world.inbound():
        world.net.b.hangup(call, world.net.now)  # harmless on an ended call
    for call in world.outbound:
        world.net.a.hangup(call, world.net.now)
    world.net.flush()
    world.net.advance(world.net.now + 200.0)  # longer than every RFC timer and any session-expiry BYE
    for agent in (world.net.a, world.net.b):
        assert agent.internal_errors == 0
        assert agent.active_calls == 0
        assert not agent.transactions.clients and not agent.transactions.servers
        assert agent.get_timer() is None
    started = len(world.outbound)
    ended = {e.handle for e in world.net.events["a"] if isinstance(e, CallEnded)}
    assert len(ended) == started  # every call we placed was reported ended exactly once
