"""Readiness for load balancers and orchestrators: 200 when serving, 503 while starting, draining or too busy for
new calls (max_active_calls reached, the machine's CPU above max_cpu_utilization)."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from aiohttp import web


class State(Enum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"


class Health:
    def __init__(self) -> None:
        self.state = State.STARTING
        self.busy: Callable[[], str] = lambda: ""
        """Why a ready node takes no new calls right now ("" when it does)."""
        self.registrations: Callable[[], list[dict[str, Any]]] = list
        """What ``/registrations`` reports (the node's outbound registrations, JSON)."""

    def available(self) -> bool:
        """Whether the node takes new calls now (the Go service's ``livekit_sip_available``)."""
        return self.state is State.READY and not self.busy()

    async def handle(self, request: web.Request) -> web.Response:
        busy = self.busy() if self.state is State.READY else ""
        if busy:
            return web.Response(status=503, text=f"busy: {busy}\n")
        status = 200 if self.state is State.READY else 503
        return web.Response(status=status, text=self.state.value + "\n")

    async def handle_registrations(self, request: web.Request) -> web.Response:
        return web.json_response(self.registrations())

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.handle)
        app.router.add_get("/health", self.handle)
        app.router.add_get("/registrations", self.handle_registrations)
