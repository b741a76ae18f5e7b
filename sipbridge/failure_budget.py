"""A per-source budget of failures (token buckets), so a source that keeps failing is turned away cheaply.

Each source may fail ``burst`` times at once; its budget refills at ``rate`` per second. Bounded: at most
``max_sources`` sources are remembered, the least recently seen go first (an attacker with many addresses can
only make the budget forget, never make it grow). Time comes in as ``now``.
"""

from __future__ import annotations

from collections import OrderedDict


class FailureBudget:
    def __init__(self, *, burst: float = 20.0, rate: float = 2.0, max_sources: int = 4096) -> None:
        self.burst = burst
        self.rate = rate
        self._max_sources = max_sources
        self._left: OrderedDict[str, tuple[float, float]] = OrderedDict()  # source -> (budget, when)

    def exhausted(self, source: str, now: float) -> bool:
        """True when ``source`` has used up its budget of failures."""
        return self._budget(source, now) < 1.0

    def spend(self, source: str, now: float) -> None:
        """Record one failure of ``source``."""
        self._left[source] = (max(0.0, self._budget(source, now) - 1.0), now)
        self._left.move_to_end(source)
        while len(self._left) > self._max_sources:
            self._left.popitem(last=False)

    def _budget(self, source: str, now: float) -> float:
        entry = self._left.get(source)
        if entry is None:
            return self.burst
        budget, when = entry
        return min(self.burst, budget + (now - when) * self.rate)
