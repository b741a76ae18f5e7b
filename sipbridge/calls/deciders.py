"""Who decides what happens to an inbound call: this node from its own store, or livekit-server (cluster mode).

The inbound flow asks a `Decider` twice at most: when the INVITE arrives, and again with the PIN the caller
entered. Both answers are `dispatch.decide.Decision`s, so the flow acts the same whoever decided.
"""

from __future__ import annotations

from typing import Protocol

from dispatch.call import InviteFacts
from dispatch.decide import Decision, decide
from sipbridge.store import SIPStore


class Decider(Protocol):
    async def decide(
        self, call: InviteFacts, *, pin: str = "", no_pin: bool = False, answered: bool = False
    ) -> Decision:
        """What to do with `call`; `pin` is what the caller entered after a REQUEST_PIN (`no_pin`: nothing)."""
        ...


class LocalDecider:
    """Decides from the inbound trunks and dispatch rules in the node's store (standalone mode), through their
    indexes: an INVITE touches only the records that concern it."""

    def __init__(self, store: SIPStore) -> None:
        self.store = store

    async def decide(
        self, call: InviteFacts, *, pin: str = "", no_pin: bool = False, answered: bool = False
    ) -> Decision:
        return decide(self.store.inbound, self.store.rules, call, pin=pin, no_pin=no_pin, answered=answered)
