"""Waiting in a test until a fake has seen something happen, without polling: each fake notifies its `Changes`
when it records something, and a waiter whose condition now holds wakes up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

WITHIN = 300.0
"""Seconds of the loop's clock a test waits for something a fake should see."""


class Changes:
    def __init__(self) -> None:
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def notify(self) -> None:
        for condition, waiter in list(self._waiters):
            if not waiter.done() and condition():
                waiter.set_result(None)
        self._waiters = [(c, w) for c, w in self._waiters if not w.done()]

    async def until(self, condition: Callable[[], bool], within: float = WITHIN) -> None:
        """Returns once ``condition()`` holds (at once if it does); AssertionError after ``within`` seconds of the
        loop's clock (a virtual minute costs the fakes' cadence a few milliseconds)."""
        if condition():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((condition, waiter))
        try:
            async with asyncio.timeout(within):
                await waiter
        except TimeoutError:
            raise AssertionError(f"still not so after {within:.0f} s: {condition.__doc__ or condition}") from None
