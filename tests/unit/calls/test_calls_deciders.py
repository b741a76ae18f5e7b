"""A node's copy of the configuration trails other nodes' writes: a call that finds no trunk or no rule waits for
the copy to catch up once, then is decided on what every node sees."""

from __future__ import annotations

import asyncio

from livekit.protocol.sip import SIPDispatchRule, SIPDispatchRuleIndividual, SIPDispatchRuleInfo, SIPInboundTrunkInfo

from dispatch.call import InviteFacts
from dispatch.decide import Verdict
from sipbridge.calls.deciders import LocalDecider
from sipbridge.store import SIPStore
from sipbridge.store.backend import TABLES, ChangeSink

CALL = InviteFacts(called_number="+15105550100", calling_number="+13105550100", source_ip="203.0.113.7",
                   lk_call_id="SCL_1")  # fmt: skip
TRUNK = SIPInboundTrunkInfo(sip_trunk_id="ST_1", numbers=["+15105550100"])
RULE = SIPDispatchRuleInfo(
    sip_dispatch_rule_id="SDR_1",
    rule=SIPDispatchRule(dispatch_rule_individual=SIPDispatchRuleIndividual(room_prefix="call-")),
)


class SharedTables:
    """What Redis holds for every node."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, bytes]] = {table: {} for table in TABLES}


class NodeBackend:
    """One node's view of the shared tables: its copy hears of other nodes' writes only when it catches up
    (after `delay`), as a node on Redis hears of them a moment late."""

    def __init__(self, shared: SharedTables, delay: float = 0.0) -> None:
        self.shared = shared
        self.delay = delay
        self.catch_ups = 0
        self._sink: ChangeSink | None = None

    async def get(self, table: str, record_id: str) -> bytes | None:
        return self.shared.tables[table].get(record_id)

    async def get_all(self, table: str) -> dict[str, bytes]:
        return dict(self.shared.tables[table])

    async def put(self, table: str, record_id: str, data: bytes) -> None:
        self.shared.tables[table][record_id] = data

    async def delete(self, table: str, record_id: str) -> bool:
        return self.shared.tables[table].pop(record_id, None) is not None

    async def ping(self) -> None:
        return None

    async def watch(self, sink: ChangeSink) -> None:
        self._sink = sink

    async def catch_up(self) -> None:
        self.catch_ups += 1
        await asyncio.sleep(self.delay)
        assert self._sink is not None
        for table, records in self.shared.tables.items():
            self._sink.table_snapshot(table, dict(records))

    async def close(self) -> None:
        return None


async def node(shared: SharedTables, delay: float = 0.0) -> tuple[SIPStore, NodeBackend]:
    backend = NodeBackend(shared, delay)
    store = SIPStore(backend)
    await store.load()
    await asyncio.sleep(0)  # the store starts following
    return store, backend


async def test_a_rule_written_on_another_node_admits_the_call_that_missed_it() -> None:
    shared = SharedTables()
    here, backend = await node(shared)
    elsewhere, _ = await node(shared)
    await here.put_inbound_trunk(TRUNK)
    await elsewhere.put_dispatch_rule(RULE)
    decision = await LocalDecider(here).decide(CALL)
    assert decision.verdict is Verdict.ACCEPT and decision.rule == RULE
    assert backend.catch_ups == 1


async def test_an_admitted_call_does_not_wait_for_the_copy() -> None:
    store, backend = await node(SharedTables())
    await store.put_inbound_trunk(TRUNK)
    await store.put_dispatch_rule(RULE)
    assert (await LocalDecider(store).decide(CALL)).verdict is Verdict.ACCEPT
    assert backend.catch_ups == 0


async def test_refusals_at_the_same_time_share_one_catch_up() -> None:
    store, backend = await node(SharedTables(), delay=0.05)
    decider = LocalDecider(store)
    decisions = await asyncio.gather(*(decider.decide(CALL) for _ in range(50)))
    assert {d.verdict for d in decisions} == {Verdict.NO_RULE}  # no trunks at all: open to anyone, but no rule
    assert backend.catch_ups == 1
    assert (await decider.decide(CALL)).verdict is Verdict.NO_RULE  # a later refusal catches up anew
    assert backend.catch_ups == 2
