"""The user agent's outbound registrations: by handle, their timers, what they send, and which INVITEs came over
them.

A `Registration` only queues outputs, as a call does; this table carries them out on the agent's transactions and
event queue, so the agent routes responses, timeouts, timers and lost connections here without knowing what a
registration does with them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .call_outputs import Emit, SendDatagram, SendRequest, SetTimer
from .events import Event
from .message import Request, Response
from .registration import TOKEN_PARAM, Registration, RegistrationEnvironment, RegistrationSpec
from .timers import TimerHeap
from .transaction import Address, ClientTransaction, TransactionLayer
from .uri import SipUri

log = logging.getLogger(__name__)


class RegistrationTable:
    def __init__(
        self, env: RegistrationEnvironment, transactions: TransactionLayer, emit: Callable[[Event], None]
    ) -> None:
        self._env = env
        self._transactions = transactions
        self._emit = emit
        self._by_handle: dict[int, Registration] = {}
        self.timers: TimerHeap[Registration] = TimerHeap()

    def register(self, spec: RegistrationSpec, now: float) -> int:
        """Start registering ``spec``; returns the new registration's handle (counting up from 1)."""
        handle = len(self._by_handle) + 1
        registration = Registration(self._env, handle, spec)
        self._by_handle[handle] = registration
        registration.start(now)
        self._carry_out(registration, now)
        return handle

    def unregister(self, handle: int, now: float) -> None:
        registration = self._by_handle[handle]
        registration.unregister(now)
        self._carry_out(registration, now)

    def __getitem__(self, handle: int) -> Registration:
        return self._by_handle[handle]

    # ---- inputs the agent routes here -----------------------------------------------------------------------

    def handle_timer(self, registration: Registration, now: float) -> None:
        registration.handle_timer(now)
        self._carry_out(registration, now)

    def on_response(self, registration: Registration, tx: ClientTransaction, response: Response, now: float) -> None:
        registration.on_response(tx, response, now)
        self._carry_out(registration, now)

    def on_timeout(self, registration: Registration, tx: ClientTransaction, now: float, status: int) -> None:
        registration.on_timeout(tx, now, status)
        self._carry_out(registration, now)

    def connection_lost(self, peer: Address, now: float) -> None:
        """A registration through the stream connection to ``peer`` registers again over a new one."""
        for registration in list(self._by_handle.values()):
            if registration.spec.destination == peer and peer.reliable:
                registration.flow_lost(now)
                self._carry_out(registration, now)

    def sent_over(self, request: Request, source: Address) -> str | None:
        """The registration an INVITE came over: its Request-URI carries that registration's token, and it comes
        from the address we register with (a stranger who learnt the token gets no trunk's trust from it)."""
        uri = request.uri
        token = uri.params.get(TOKEN_PARAM) if isinstance(uri, SipUri) else None
        if not token:
            return None
        for registration in self._by_handle.values():
            if registration.token == token:
                if registration.spec.destination.host == source.host:
                    return registration.spec.name
                log.info("INVITE %s names registration %s but comes from %s: not taken as sent over it",
                         request.call_id, registration.spec.name, source.host)  # fmt: skip
        return None

    def _carry_out(self, registration: Registration, now: float) -> None:
        for output in registration.take_outputs():
            if isinstance(output, SendRequest):
                tx = self._transactions.start_client(output.request, output.peer, now)
                tx.owner = registration
            elif isinstance(output, SendDatagram):
                self._transactions.send(output.data, output.peer)
            elif isinstance(output, Emit):
                self._emit(output.event)
            elif isinstance(output, SetTimer):
                self.timers.schedule(registration, output.due)
