"""Who decides what happens to an inbound call: this node from its own store, or livekit-server (cluster mode).

The inbound flow asks a `Decider` twice at most: when the INVITE arrives, and again with the PIN the caller
entered. Both answers are `dispatch.decide.Decision`s, so the flow acts the same whoever decided.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from dispatch.call import InviteFacts
from dispatch.decide import Decision, Verdict, decide
from sipbridge.store import SIPStore

log = logging.getLogger(__name__)


class Decider(Protocol):
    async def decide(
        self, call: InviteFacts, *, pin: str = "", no_pin: bool = False, answered: bool = False
    ) -> Decision:
        """What to do with `call`; `pin` is what the caller entered after a REQUEST_PIN (`no_pin`: nothing)."""
        ...


_NOT_FOUND = frozenset({Verdict.NO_TRUNK, Verdict.NO_RULE})


class LocalDecider:
    """Decides from the inbound trunks and dispatch rules in the node's store (standalone mode), through their
    indexes: an INVITE touches only the records that concern it.

    The store's copy follows other writers (nodes sharing Redis) a moment late, so a call that finds no trunk or
    no rule waits for the copy to catch up and is decided again: a rule written on one node admits a call on
    another at once. Refusals share one catch-up at a time, so a flood of calls to unknown numbers costs the
    store one round trip at a time, not one each."""

    def __init__(self, store: SIPStore) -> None:
        self.store = store
        self._catching_up: asyncio.Future[None] | None = None

    async def decide(
        self, call: InviteFacts, *, pin: str = "", no_pin: bool = False, answered: bool = False
    ) -> Decision:
        decision = self._decide(call, pin, no_pin, answered)
        if decision.verdict in _NOT_FOUND:
            await self._catch_up()
            decision = self._decide(call, pin, no_pin, answered)
        return decision

    def _decide(self, call: InviteFacts, pin: str, no_pin: bool, answered: bool) -> Decision:
        return decide(self.store.inbound, self.store.rules, call, pin=pin, no_pin=no_pin, answered=answered)

    async def _catch_up(self) -> None:
        if self._catching_up is None:
            self._catching_up = asyncio.ensure_future(self._store_catch_up())
            self._catching_up.add_done_callback(self._caught_up)
        await asyncio.shield(self._catching_up)

    async def _store_catch_up(self) -> None:
        try:
            await self.store.catch_up()
        except Exception:  # the first decision stands
            log.exception("could not catch up with other writers' configuration changes")

    def _caught_up(self, _done: asyncio.Future[None]) -> None:
        self._catching_up = None
