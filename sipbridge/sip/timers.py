"""A lazy min-heap of deadlines for objects that keep their own ``deadlines`` dict.

Entries are never removed when a timer is cancelled or re-armed; stale ones are skipped when they surface. That
keeps arming O(log n) and finding the next deadline amortised O(log n), however many transactions are alive.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, Protocol, TypeVar


class HasDeadlines(Protocol):
    deadlines: dict[str, float]


T = TypeVar("T", bound=HasDeadlines)


class TimerHeap(Generic[T]):
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._counter = itertools.count()

    def schedule(self, owner: T, due: float) -> None:
        heapq.heappush(self._heap, (due, next(self._counter), owner))

    def next_deadline(self) -> float | None:
        while self._heap:
            due, _, owner = self._heap[0]
            if due in owner.deadlines.values():
                return due
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now: float) -> list[T]:
        """Owners with a live deadline at or before ``now``, each once, earliest first."""
        owners: list[T] = []
        seen: set[int] = set()
        while self._heap and self._heap[0][0] <= now:
            due, _, owner = heapq.heappop(self._heap)
            if due in owner.deadlines.values() and id(owner) not in seen:
                seen.add(id(owner))
                owners.append(owner)
        return owners
