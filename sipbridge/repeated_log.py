"""Log lines for events an attacker can repeat at will (junk datagrams, bad tokens): a few lines, whatever the flood.

The first event from a source in a window is logged at once, while the window's budget of such lines lasts; the
rest are counted and summed up when the window ends: one line for each of the busiest sources and one for all the
others ("N malformed SIP messages from X in the last 10 s"). However many events and sources, a window writes at
most ``immediate + summarised + 1`` lines. Time comes in as ``now`` (sans-IO): the owner calls `flush` when
`next_deadline` passes, or it happens on the next `note`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

WINDOW = 10.0
MAX_SOURCES = 4096
"""Sources counted one by one in a window; more are only counted together."""


@dataclass
class _Count:
    events: int = 0
    logged: int = 0
    last: str = ""


class RepeatedEventLog:
    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        level: int = logging.WARNING,
        window: float = WINDOW,
        immediate: int = 3,
        summarised: int = 5,
    ) -> None:
        """``what`` names the events in summaries, plural: "malformed SIP messages"."""
        self._log = logger
        self._what = what
        self._level = level
        self._window = window
        self._immediate = immediate
        self._summarised = summarised
        self._counts: dict[str, _Count] = {}
        self._uncounted_events = 0
        self._immediate_left = immediate
        self._window_end: float | None = None

    def note(self, source: str, detail: str, now: float) -> None:
        """One event from ``source``; ``detail`` says what was wrong with it."""
        if self._window_end is not None and now >= self._window_end:
            self.flush(now)
        if self._window_end is None:
            self._window_end = now + self._window
        count = self._counts.get(source)
        if count is None:
            if len(self._counts) >= MAX_SOURCES:
                self._uncounted_events += 1
                return
            count = self._counts[source] = _Count()
        count.events += 1
        count.last = detail
        if count.logged == 0 and self._immediate_left > 0:
            self._immediate_left -= 1
            count.logged = 1
            self._log.log(self._level, "%s from %s: %s", self._what, source, detail)

    def next_deadline(self) -> float | None:
        """When the current window's summary is due (None while nothing is counted)."""
        return self._window_end

    def flush(self, now: float) -> None:
        """Write the summary of a finished window and start afresh."""
        if self._window_end is None or now < self._window_end:
            return
        unlogged = sorted(
            ((s, c) for s, c in self._counts.items() if c.events > c.logged), key=lambda item: -item[1].events
        )
        for source, count in unlogged[: self._summarised]:
            self._log.log(
                self._level,
                "%d %s from %s in the last %.0f s (last: %s)",
                count.events - count.logged, self._what, source, self._window, count.last,
            )  # fmt: skip
        rest = unlogged[self._summarised :]
        others = sum(c.events - c.logged for _, c in rest) + self._uncounted_events
        if others:
            sources = f"{len(rest)}+" if self._uncounted_events else str(len(rest))
            self._log.log(
                self._level, "%d more %s from %s other sources in the last %.0f s",
                others, self._what, sources, self._window,
            )  # fmt: skip
        self._counts.clear()
        self._uncounted_events = 0
        self._immediate_left = self._immediate
        self._window_end = None


class LoopRepeatedEventLog(RepeatedEventLog):
    """The asyncio form: time is the running loop's, and each window's summary is written when it ends."""

    def __init__(self, logger: logging.Logger, what: str, **kwargs: Any) -> None:
        super().__init__(logger, what, **kwargs)
        self._timer: asyncio.TimerHandle | None = None

    def note_now(self, source: str, detail: str) -> None:
        loop = asyncio.get_running_loop()
        self.note(source, detail, loop.time())
        deadline = self.next_deadline()
        if deadline is not None and self._timer is None:
            self._timer = loop.call_at(deadline, self._flush_due)

    def _flush_due(self) -> None:
        self._timer = None
        self.flush(asyncio.get_running_loop().time())
