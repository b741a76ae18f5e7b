"""The call operations a front (the standalone Twirp API, the cluster mode's psrpc server) asks of a node.

Plain async methods over plain data: placing a call from an `OutboundPlan` and transferring a call found by its
participant or its LiveKit call ID. The fronts only translate requests and errors.
"""

from __future__ import annotations

import asyncio

from dispatch.outbound import OutboundPlan
from sipbridge.calls.errors import CallError
from sipbridge.calls.outbound import CreatedParticipant, OutboundCallFlow
from sipbridge.calls.registry import ActiveCall
from sipbridge.calls.seams import Dialler
from sipbridge.calls.services import CallServices


class CallControl:
    def __init__(self, services: CallServices, dialler: Dialler) -> None:
        self.services = services
        self.dialler = dialler
        self._outbound: set[asyncio.Task[None]] = set()

    async def create_participant(self, plan: OutboundPlan) -> CreatedParticipant:
        """Place an outbound call; see `OutboundCallFlow.start`. Raises CallError."""
        flow = OutboundCallFlow(self.services, self.dialler, plan)
        try:
            return await flow.start()
        finally:  # also when the call failed before its answer: its task is still ending it
            if flow.task is not None and not flow.task.done():
                self._outbound.add(flow.task)
                flow.task.add_done_callback(self._outbound.discard)

    def find_participant(self, room: str, identity: str) -> ActiveCall:
        call = self.services.registry.by_participant(room, identity)
        if call is None:
            raise CallError("not_found", f"no SIP call of participant {identity!r} in room {room!r} on this node")
        return call

    def find_call(self, lk_call_id: str) -> ActiveCall:
        call = self.services.registry.by_call_id(lk_call_id)
        if call is None:
            raise CallError("not_found", f"no SIP call {lk_call_id!r} on this node")
        return call

    async def close(self) -> None:
        """Ends the outbound calls still running (at shutdown)."""
        for task in list(self._outbound):
            task.cancel()
        await asyncio.gather(*self._outbound, return_exceptions=True)
