"""The machine's CPU load, sampled from /proc/stat: what ``max_cpu_utilization`` compares with, as the Go service
does (a node whose machine is this busy takes no new calls, so the calls it holds keep their media)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

SAMPLE_INTERVAL = 1.0


def _counters(stat: str) -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs, from the ``cpu`` line of /proc/stat (idle includes iowait)."""
    fields = [int(v) for v in stat.splitlines()[0].split()[1:]]
    return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields[:8])


class CpuLoad:
    """Share of the machine's CPU in use over the last sample (0..1), refreshed every SAMPLE_INTERVAL."""

    def __init__(self, stat_path: Path = Path("/proc/stat")) -> None:
        self._path = stat_path
        self.load = 0.0
        self._last = _counters(self._path.read_text())
        self._task: asyncio.Task[None] | None = None
        self._watchers: list[Callable[[float], None]] = []

    def watch(self, watcher: Callable[[float], None]) -> None:
        """Call ``watcher`` with every new sample (the node's capacity follows it)."""
        self._watchers.append(watcher)

    def sample(self) -> float:
        idle, total = _counters(self._path.read_text())
        last_idle, last_total = self._last
        self._last = (idle, total)
        if total > last_total:
            self.load = max(0.0, min(1.0, 1 - (idle - last_idle) / (total - last_total)))
        for watcher in self._watchers:
            watcher(self.load)
        return self.load

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL)
            self.sample()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
