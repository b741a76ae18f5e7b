"""kill -9 during SIP API writes: after a restart the embedded store has every write the API acknowledged, and no
other change than the one write in flight when the bridge died (applied whole or not at all).

A task creates, renames and deletes inbound trunks, outbound trunks and dispatch rules through the Twirp API with
the livekit-api client, as fast as the bridge answers; the test SIGKILLs the bridge at a random moment (after a
random number of acknowledged writes), restarts it on the same store and compares what the API lists with what
was acknowledged. That the bridge starts at all shows the store loads (nothing half-written). ROUNDS kills, each
printed with its seed-driven kill point; the seed is printed so a failure can be replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness.bridge import BridgeProcess, api_client
from livekit import api
from livekit.api.sip_service import SipService

pytestmark = pytest.mark.integration

ROUNDS = 5
MAX_WRITES_BEFORE_KILL = 40
Key = tuple[str, str]
"""(kind, ID): kind is "inbound", "outbound" or "rule"; a record's state here is its name."""


@dataclass
class InFlight:
    """The write that was sent when the bridge died: the record's name before and after it (None: absent)."""

    kind: str
    key: Key | None  # None for a create: its ID was never learnt
    before: str | None
    after: str | None


class Writer:
    """Random writes through the API until `kill_after` are acknowledged, and on; `acked` holds the state every
    acknowledged write left."""

    def __init__(self, rng: random.Random, acked: dict[Key, str], kill_after: int) -> None:
        self.rng = rng
        self.acked = acked
        self.kill_after = kill_after
        self.count = 0
        self.reached = asyncio.Event()
        self.in_flight: InFlight | None = None

    async def run(self, client: api.LiveKitAPI) -> None:
        """Write until the connection fails (the bridge died); the failing write is left in `in_flight`."""
        while True:
            await self._one(client.sip, f"{self.rng.getrandbits(40):010x}")
            self.in_flight = None
            self.count += 1
            if self.count >= self.kill_after:
                self.reached.set()

    async def _one(self, sip: SipService, serial: str) -> None:
        ruled = {name.split("|")[1] for (kind, _), name in self.acked.items() if kind == "rule"}
        free_trunks = [key for key in self.acked if key[0] == "inbound" and key[1] not in ruled]
        deletable = [key for key in self.acked if key[0] != "inbound" or key in free_trunks]
        choice = self.rng.random()
        if choice < 0.25 or not self.acked:
            name = f"in-{serial}"
            self.in_flight = InFlight("inbound", None, None, name)
            trunk = api.SIPInboundTrunkInfo(name=name, numbers=[f"+1{int(serial, 16) % 10**10:010d}"])
            created = await sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=trunk))
            self.acked[("inbound", created.sip_trunk_id)] = name
        elif choice < 0.4:
            name = f"out-{serial}"
            self.in_flight = InFlight("outbound", None, None, name)
            out = api.SIPOutboundTrunkInfo(name=name, address="sip.example.com", numbers=[f"+1{serial}"])
            created_out = await sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=out))
            self.acked[("outbound", created_out.sip_trunk_id)] = name
        elif choice < 0.55 and free_trunks:
            trunk_id = self.rng.choice(free_trunks)[1]
            name = f"rule|{trunk_id}|{serial}"  # the name says which trunk the rule belongs to
            self.in_flight = InFlight("rule", None, None, name)
            direct = api.SIPDispatchRuleDirect(room_name=f"room-{serial}")
            rule = api.SIPDispatchRuleInfo(
                rule=api.SIPDispatchRule(dispatch_rule_direct=direct), trunk_ids=[trunk_id], name=name
            )
            created_rule = await sip.create_dispatch_rule(api.CreateSIPDispatchRuleRequest(dispatch_rule=rule))
            self.acked[("rule", created_rule.sip_dispatch_rule_id)] = name
        elif choice < 0.8 or not deletable:
            key = self.rng.choice(sorted(self.acked))
            old = self.acked[key]
            name = f"{old.rsplit('|', 1)[0]}|{serial}" if key[0] == "rule" else f"{key[0]}-{serial}"
            self.in_flight = InFlight(key[0], key, old, name)
            if key[0] == "inbound":
                await sip.update_inbound_trunk_fields(key[1], name=name)
            elif key[0] == "outbound":
                await sip.update_outbound_trunk_fields(key[1], name=name)
            else:
                await sip.update_dispatch_rule_fields(key[1], name=name)
            self.acked[key] = name
        else:
            key = self.rng.choice(sorted(deletable))  # an inbound trunk only once no rule points at it
            self.in_flight = InFlight(key[0], key, self.acked[key], None)
            if key[0] == "rule":
                await sip.delete_dispatch_rule(api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=key[1]))
            else:
                await sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=key[1]))
            del self.acked[key]


async def stored(client: api.LiveKitAPI) -> dict[Key, str]:
    """Every record the bridge lists, by (kind, ID), with its name."""
    inbound = await client.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())
    outbound = await client.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())
    rules = await client.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())
    return {
        **{("inbound", t.sip_trunk_id): t.name for t in inbound.items},
        **{("outbound", t.sip_trunk_id): t.name for t in outbound.items},
        **{("rule", r.sip_dispatch_rule_id): r.name for r in rules.items},
    }


def check(after_restart: dict[Key, str], acked: dict[Key, str], in_flight: InFlight | None) -> None:
    """Everything acknowledged is there, and nothing else but the in-flight write, whole or not at all."""
    unexplained = dict(after_restart)
    if in_flight is not None and in_flight.key is not None:  # an update or delete: before or after, nothing else
        assert after_restart.get(in_flight.key) in (in_flight.before, in_flight.after), in_flight
        unexplained.pop(in_flight.key, None)
        acked = {k: v for k, v in acked.items() if k != in_flight.key}
    for key, name in acked.items():
        assert unexplained.pop(key, None) == name, f"acknowledged {key} = {name!r} lost"
    if in_flight is not None and in_flight.key is None:  # a create: at most its one record, whole
        unexplained = {k: v for k, v in unexplained.items() if (k[0], v) != (in_flight.kind, in_flight.after)}
    assert not unexplained, f"records no acknowledged write left (never created, or deleted): {unexplained}"


def outcome(in_flight: InFlight | None, after_restart: dict[Key, str]) -> str:
    """What became of the write in flight (both outcomes are correct; seeing both shows where the kills land)."""
    if in_flight is None:
        return "no write in flight"
    if in_flight.key is None:
        applied = (in_flight.kind, in_flight.after) in {(kind, name) for (kind, _), name in after_restart.items()}
    else:
        applied = after_restart.get(in_flight.key) == in_flight.after
    what = "create" if in_flight.key is None else "delete" if in_flight.after is None else "rename"
    return f"the {in_flight.kind} {what} in flight was {'applied' if applied else 'not applied'}"


async def test_kill_9_during_api_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    acked: dict[Key, str] = {}
    bridge = BridgeProcess(tmp_path / "bridge")
    bridge.start()
    try:
        for round_ in range(ROUNDS):
            writer = Writer(rng, acked, kill_after=rng.randrange(1, MAX_WRITES_BEFORE_KILL))
            async with api_client(bridge) as client:
                writing = asyncio.create_task(writer.run(client))
                reached = asyncio.create_task(writer.reached.wait())
                try:
                    done, _ = await asyncio.wait([writing, reached], timeout=60, return_when=asyncio.FIRST_COMPLETED)
                    if writing in done:
                        writing.result()  # a write failed while the bridge was up: raise it
                    assert reached in done, f"only {writer.count} writes acknowledged in 60 s"
                    os.kill(bridge.process.pid, signal.SIGKILL)  # while the next write is on its way
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(writing, 30)  # ends with the connection error of the write in flight
                finally:
                    writing.cancel()
                    reached.cancel()
            bridge.restart()  # on the same store; start() waits for health 200: the store loaded
            async with api_client(bridge) as client:
                after_restart = await stored(client)
            check(after_restart, acked, writer.in_flight)
            fate = outcome(writer.in_flight, after_restart)
            print(f"round {round_}: killed after {writer.count} acknowledged writes; {fate}")
            acked.clear()
            acked.update(after_restart)  # the in-flight write's outcome is now known
        assert acked, "no write was ever acknowledged"
    finally:
        bridge.stop()
