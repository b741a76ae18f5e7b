"""The node's capacity wakes whoever follows it (the cluster node's queue membership, the drain) at each change
instead of being polled: a call beginning or ending, draining, the CPU crossing max_cpu_utilization."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from call_node import TO, CallNode, inbound_trunk, room_rule
from fake_sip import FakeCallerLeg, invite

from sipbridge.calls.capacity import Capacity
from sipbridge.cpu_load import CpuLoad


def stat(idle: int, busy: int) -> str:
    """A /proc/stat ``cpu`` line: user, nice, system, idle, iowait, irq, softirq, steal."""
    return f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0\n"


async def test_calls_coming_and_going_wake_the_follower() -> None:
    capacity = Capacity(max_active_calls=2)
    changed = capacity.next_change()
    capacity.begin("SCL_1")
    await changed
    capacity.begin("SCL_1")  # already counted: no change
    changed = capacity.next_change()
    capacity.begin("SCL_2")
    await changed
    assert capacity.refusal == "max_active_calls (2) reached"
    changed = capacity.next_change()
    capacity.end("SCL_1")
    await changed
    assert not capacity.at_capacity


async def test_draining_wakes_the_follower_and_refuses_everything() -> None:
    capacity = Capacity()
    changed = capacity.next_change()
    capacity.drain()
    await changed
    assert capacity.draining and capacity.refusal == "the node is draining"


async def test_one_follower_giving_up_leaves_the_others_waiting() -> None:
    capacity = Capacity()
    gone, staying = capacity.next_change(), capacity.next_change()
    gone.cancel()
    capacity.begin("SCL_1")
    await staying


async def test_a_drain_waits_for_the_last_call_without_polling() -> None:
    node = CallNode([inbound_trunk()], [room_rule()])
    caller = FakeCallerLeg(invite(TO))
    flow = node.receive(caller)
    await caller.until_sent("180")
    capacity = node.services.capacity
    capacity.drain()
    drained = asyncio.create_task(capacity.wait_until(lambda c: not c.active))
    later = FakeCallerLeg(invite(TO))
    await node.receive(later)
    assert later.sent == ["503"] and not drained.done()
    caller.hang_up("cancel")
    await drained
    await flow
    await node.released()


async def test_the_cpu_crossing_its_limit_is_a_change(tmp_path: Path) -> None:
    proc_stat = tmp_path / "stat"
    proc_stat.write_text(stat(idle=0, busy=0))
    cpu = CpuLoad(proc_stat)
    capacity = Capacity(max_cpu_utilization=0.8, cpu=cpu)
    changed = capacity.next_change()
    proc_stat.write_text(stat(idle=50, busy=50))  # 50 %: under the limit, no change
    cpu.sample()
    assert not changed.done()
    proc_stat.write_text(stat(idle=55, busy=145))  # 95 % of the last interval
    cpu.sample()
    await changed
    assert capacity.refusal == "CPU at 95%, above max_cpu_utilization (80%)"
    changed = capacity.next_change()
    proc_stat.write_text(stat(idle=145, busy=155))  # 10 %
    cpu.sample()
    await changed
    assert capacity.refusal == ""


@pytest.mark.parametrize("limit", [0, 3])
async def test_max_active_calls_zero_means_no_limit(limit: int) -> None:
    capacity = Capacity(max_active_calls=limit)
    for n in range(3):
        capacity.begin(f"SCL_{n}")
    assert capacity.at_capacity is bool(limit)
