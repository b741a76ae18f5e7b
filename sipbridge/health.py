"""Readiness for load balancers and orchestrators: 200 when serving, 503 while starting or draining."""

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
        self.registrations: Callable[[], list[dict[str, Any]]] = list
        """What ``/registrations`` reports (the node's outbound registrations, JSON)."""

    async def handle(self, request: web.Request) -> web.Response:
        status = 200 if self.state is State.READY else 503
        return web.Response(status=status, text=self.state.value + "\n")

    async def handle_registrations(self, request: web.Request) -> web.Response:
        return web.json_response(self.registrations())

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.handle)
        app.router.add_get("/health", self.handle)
        app.router.add_get("/registrations", self.handle_registrations)
