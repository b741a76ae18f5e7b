"""Readiness for load balancers and orchestrators: 200 when serving, 503 while starting or draining."""

from __future__ import annotations

from enum import Enum

from aiohttp import web


class State(Enum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"


class Health:
    def __init__(self) -> None:
        self.state = State.STARTING

    async def handle(self, request: web.Request) -> web.Response:
        status = 200 if self.state is State.READY else 503
        return web.Response(status=status, text=self.state.value + "\n")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.handle)
        app.router.add_get("/health", self.handle)
