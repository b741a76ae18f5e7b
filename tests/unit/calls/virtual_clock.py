"""An asyncio event loop on a clock of its own, which jumps to the next timer whenever nothing is ready.

The call flows wait with the loop's clock (ringing timeouts, the PIN's 30 s per digit, the 24 h cap); on this loop
those waits pass in microseconds, in the order the real ones would, and a test reads when something happened from
``loop.time()``. Nothing here sleeps: with no socket and no thread, a loop with nothing ready and nothing scheduled
can never wake again, so that is reported as a deadlock instead of hanging the test.
"""

from __future__ import annotations

import asyncio
import selectors


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)  # the loop's own wake-up pipe is the only thing registered
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise RuntimeError("deadlock: nothing is ready, no timer is set, nothing else can wake the loop")
        self.now += timeout
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._jumping = _JumpingSelector()
        super().__init__(self._jumping)

    def time(self) -> float:
        return self._jumping.now
