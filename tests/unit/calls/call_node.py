"""A node's call side with every layer below faked: `CallServices` built as `sipbridge.service` builds it, with a
fake room, fake RTP sessions on a real port allocator, a fake dialler, the real decider logic over trunks and
rules kept in lists, the real nonce ledger, capacity, registry and metrics.

`CallNode.released` is what every ending must leave behind: no RTP port held, no call counted active or
registered, every participant gone from its room, no task of the flows left, each call's termination counted
exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fake_room import FakeRoom
from fake_rtp import FakeRtpSessions
from fake_sip import FakeCallerLeg, FakeDialler
from google.protobuf.duration_pb2 import Duration
from livekit.protocol.sip import SIPDispatchRule, SIPDispatchRuleDirect, SIPDispatchRuleInfo, SIPInboundTrunkInfo

from dispatch.call import InviteFacts
from dispatch.decide import Decision, decide
from dispatch.outbound import OutboundPlan
from sipbridge.calls.capacity import Capacity
from sipbridge.calls.control import CallControl
from sipbridge.calls.inbound import inbound_handler
from sipbridge.calls.nonces import MemoryNonceLedger
from sipbridge.calls.services import CallServices
from sipbridge.config import Config
from sipbridge.media.ports import PortAllocator
from sipbridge.room import LiveKitCredentials
from sipbridge.stats import Stats

NODE_ID = "NE_test"
TO = "+15105550100"
"""The number the tests' trunk answers."""
SDP_ADDRESS = "192.0.2.1"
RTP_PORTS = (20000, 20010)
"""Five port pairs: enough for every test, few enough to run out of."""


def inbound_trunk(**fields: Any) -> SIPInboundTrunkInfo:
    """A trunk for TO; ``ringing_timeout`` and ``max_call_duration`` in seconds."""
    durations = {name: Duration(seconds=fields.pop(name)) for name in ("ringing_timeout", "max_call_duration")
                 if name in fields}  # fmt: skip
    return SIPInboundTrunkInfo(**{"sip_trunk_id": "ST_in", "numbers": [TO], **fields, **durations})


def room_rule(room: str = "room", pin: str = "", **fields: Any) -> SIPDispatchRuleInfo:
    """Every call of the trunk to one room (behind ``pin`` if given)."""
    rule = SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name=room, pin=pin))
    return SIPDispatchRuleInfo(sip_dispatch_rule_id=f"SDR_{room}", rule=rule, **fields)


def outbound_plan(**fields: Any) -> OutboundPlan:
    """CreateSIPParticipant for +13105550199 over a trunk at carrier.test, into room "out"."""
    base: dict[str, Any] = {
        "lk_call_id": "SCL_out", "trunk_id": "ST_out", "address": "carrier.test", "transport": 0,
        "number": "+15105550100", "call_to": "+13105550199", "from_host": "", "username": "", "password": "",
        "room_name": "out", "participant_identity": "callee",
    }  # fmt: skip
    return OutboundPlan(**{**base, **fields})


@dataclass
class ListDecider:
    """`dispatch.decide` over trunks and rules held in lists (the store's indexes give the same decisions)."""

    trunks: list[SIPInboundTrunkInfo] = field(default_factory=list)
    rules: list[SIPDispatchRuleInfo] = field(default_factory=list)
    asked: list[InviteFacts] = field(default_factory=list)

    async def decide(
        self, call: InviteFacts, *, pin: str = "", no_pin: bool = False, answered: bool = False
    ) -> Decision:
        self.asked.append(call)
        return decide(self.trunks, self.rules, call, pin=pin, no_pin=no_pin, answered=answered, new_suffix=lambda: "X")


class CallNode:
    def __init__(
        self,
        trunks: Sequence[SIPInboundTrunkInfo] = (),
        rules: Sequence[SIPDispatchRuleInfo] = (),
        **config: Any,
    ) -> None:
        self.config = replace(Config(api_key="devkey", api_secret="secret", ws_url="ws://livekit.test"), **config)
        self.ports = PortAllocator(*RTP_PORTS)
        self.rtp = FakeRtpSessions(self.ports)
        self.room = FakeRoom()
        self.dialler = FakeDialler()
        self.decider = ListDecider(list(trunks), list(rules))
        self.stats = Stats(NODE_ID)
        self.reports: list[Any] = []
        self.services = CallServices(
            config=self.config,
            livekit=LiveKitCredentials(self.config.ws_url, self.config.api_key, self.config.api_secret),
            codecs=("PCMU", "PCMA", "G722"),
            sdp_address=SDP_ADDRESS,
            open_rtp=self.rtp,
            participants=self.room,
            decider=self.decider,
            nonces=MemoryNonceLedger(),
            stats=self.stats,
            capacity=Capacity(self.config.max_active_calls, self.config.max_cpu_utilization),
        )
        self.control = CallControl(self.services, self.dialler)
        self._handle = inbound_handler(self.services)
        self._flows: list[asyncio.Task[None]] = []

    def receive(self, caller: FakeCallerLeg) -> asyncio.Task[None]:
        """An INVITE reaches the node: its flow runs in a task of its own, as under the endpoint."""
        flow = asyncio.create_task(self._handle(caller), name=f"inbound-{caller.call_id}")
        self._flows.append(flow)
        return flow

    async def place(self, plan: OutboundPlan) -> Any:
        """CreateSIPParticipant, as the API asks the node."""
        return await self.control.create_participant(plan)

    async def let_time_pass(self, seconds: float) -> None:
        """The loop's clock runs on by ``seconds`` (virtual: the fakes' timers fire, nothing real waits)."""
        await asyncio.sleep(seconds)

    # -- what the metrics say ---------------------------------------------------------------------------------

    def terminated(self) -> dict[tuple[str, ...], float]:
        """``livekit_sip_calls_terminated``: (dir, result, reason) -> count."""
        return {(k[1], k[3], k[4]): v for k, v in self.stats.calls_terminated.values.items()}

    def invite_errors(self) -> dict[tuple[str, ...], float]:
        """``livekit_sip_invite_error``: (dir, reason) -> count."""
        return {(k[1], k[3]): v for k, v in self.stats.invite_error.values.items()}

    def active_gauge(self) -> float:
        """``livekit_sip_calls_active``, summed over its labels."""
        families = self.stats.registry.collect()
        return sum(s.value for f in families if f.name == "livekit_sip_calls_active" for s in f.samples)

    def packets_counted(self) -> float:
        """``livekit_sip_packets_rtp`` folded from ended calls."""
        return sum(self.stats.packets_rtp.values.values())

    # -- what every ending must leave behind ------------------------------------------------------------------

    async def released(self) -> None:
        """Waits for every flow to finish, then checks that nothing of any call is left."""
        outbound = list(self.control._outbound)  # the outbound flows' tasks, as production keeps them
        await asyncio.gather(*self._flows, *outbound)
        assert self.ports.in_use == 0, f"{self.ports.in_use} RTP port(s) still held"
        assert all(session.closed for session in self.rtp.sessions), "an RTP session was not closed"
        assert not self.services.capacity.active, f"calls still active: {set(self.services.capacity.active)}"
        assert len(self.services.registry) == 0, "a call is still registered for transfers"
        assert all(p.left or not p.joined for p in self.room.participants), "a participant is still in its room"
        current = asyncio.current_task()
        left = [t for t in asyncio.all_tasks() if t is not current]
        assert not left, f"tasks left behind: {[t.get_name() for t in left]}"
        assert self.active_gauge() == 0, "livekit_sip_calls_active does not fall back to 0"
