"""Whether the node takes a new call now, and a wake-up whenever that may have changed.

A call is refused while ``max_active_calls`` are in progress, while the machine's CPU is above
``max_cpu_utilization`` or while the node drains. Whoever follows that (the cluster node joining and leaving the
outbound queue, a drain waiting for the last call) waits on `next_change` instead of polling: it resolves when a
call begins or ends, draining starts, or a CPU sample crosses the limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Set

from sipbridge.cpu_load import CpuLoad


class Capacity:
    def __init__(self, max_active_calls: int = 0, max_cpu_utilization: float = 1.0, cpu: CpuLoad | None = None) -> None:
        self.max_active_calls = max_active_calls
        self.max_cpu_utilization = max_cpu_utilization
        self.cpu = cpu
        """The machine's CPU load (None: not watched)."""
        self._active: set[str] = set()
        self._draining = False
        self._cpu_over = False
        self._change: asyncio.Future[None] | None = None
        if cpu is not None:
            cpu.watch(self._cpu_sampled)

    @property
    def active(self) -> Set[str]:
        """IDs of the calls in progress."""
        return self._active

    @property
    def draining(self) -> bool:
        """Set on SIGTERM: calls in progress go on, new ones are refused (503)."""
        return self._draining

    @property
    def refusal(self) -> str:
        """Why a new call is refused now ("" when it is not)."""
        if self._draining:
            return "the node is draining"
        limit = self.max_active_calls
        if limit and len(self._active) >= limit:
            return f"max_active_calls ({limit}) reached"
        if self.cpu is not None and self.cpu.load > self.max_cpu_utilization:
            return f"CPU at {self.cpu.load:.0%}, above max_cpu_utilization ({self.max_cpu_utilization:.0%})"
        return ""

    @property
    def at_capacity(self) -> bool:
        return bool(self.refusal)

    def begin(self, call_id: str) -> None:
        """A call is in progress from now on."""
        if call_id not in self._active:
            self._active.add(call_id)
            self._changed()

    def end(self, call_id: str) -> None:
        if call_id in self._active:
            self._active.discard(call_id)
            self._changed()

    def drain(self) -> None:
        """Refuse every new call from now on."""
        if not self._draining:
            self._draining = True
            self._changed()

    def next_change(self) -> asyncio.Future[None]:
        """Resolves at the next change. Take it *before* reading the state it guards, so that a change while the
        reader acts on what it read is not missed; cancelling it leaves other waiters alone."""
        if self._change is None:
            self._change = asyncio.get_running_loop().create_future()
        return asyncio.shield(self._change)

    async def wait_until(self, condition: Callable[[Capacity], bool]) -> None:
        """Returns once ``condition(self)`` holds (at once if it does)."""
        while not condition(self):
            await self.next_change()

    def _cpu_sampled(self, load: float) -> None:
        over = load > self.max_cpu_utilization
        if over != self._cpu_over:
            self._cpu_over = over
            self._changed()

    def _changed(self) -> None:
        change, self._change = self._change, None
        if change is not None:
            change.set_result(None)
