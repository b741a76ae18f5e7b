"""The node's outbound registrations (config ``registrations``): started with the SIP endpoint, their state in the
log, in Prometheus and on the health port (``/registrations``), removed on drain and shutdown.

The SIP stack keeps each binding up (``sip.registration``); this module turns config into what it registers,
resolves where REGISTER goes (the outbound proxy, else the registrar, by RFC 3263), and reports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from sipbridge import metrics
from sipbridge.config import RegistrationConfig
from sipbridge.sip import DigestCredentials, Endpoint
from sipbridge.sip.events import RegistrationChanged
from sipbridge.sip.registration import RegistrationSpec
from sipbridge.sip.uri import SipUri, parse_uri

log = logging.getLogger("sipbridge.registrations")
RESOLVE_RETRY = 30.0
"""Seconds between attempts to resolve a registrar that does not resolve yet."""


@dataclass
class _Status:
    config: RegistrationConfig
    state: str = "resolving"
    status: int | None = None
    expires_at: float | None = None
    next_attempt: float | None = None


class Registrations:
    def __init__(self, configs: tuple[RegistrationConfig, ...], endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._status = {config.name: _Status(config) for config in configs}
        self._tasks: list[asyncio.Task[None]] = []
        endpoint.watch_registrations(self._changed)

    def start(self) -> None:
        for status in self._status.values():
            name = f"register-{status.config.name}"
            self._tasks.append(asyncio.create_task(self._register(status.config), name=name))

    async def _register(self, config: RegistrationConfig) -> None:
        """Resolve where REGISTER goes (again every RESOLVE_RETRY seconds until it resolves), then register."""
        registrar = parse_uri(config.registrar)
        proxy = parse_uri(config.outbound_proxy) if config.outbound_proxy else registrar
        assert isinstance(registrar, SipUri) and isinstance(proxy, SipUri)  # checked when the config was read
        while not (targets := await self.endpoint.resolve(proxy, config.transport or None)):
            log.warning("registration %s: cannot resolve %s; trying again in %.0f s", config.name, proxy, RESOLVE_RETRY)
            self._status[config.name].state = "failing"
            await asyncio.sleep(RESOLVE_RETRY)
        aor = SipUri(host=registrar.host, user=config.username, scheme=registrar.scheme)
        password = config.password
        credentials = DigestCredentials(config.auth_username or config.username, password) if password else None
        spec = RegistrationSpec(
            name=config.name, registrar=SipUri(host=registrar.host, port=registrar.port, scheme=registrar.scheme,
                                               params=dict(registrar.params)),
            aor=aor, destination=targets[0], credentials=credentials, realm=config.realm or None,
            expires=config.expires, contact_user=config.contact_user or config.username,
            keepalive_interval=config.keepalive_interval,
        )  # fmt: skip
        log.info("registration %s: registering %s at %s (%s)", config.name, aor, registrar, targets[0])
        self.endpoint.register(spec)

    def _changed(self, spec: RegistrationSpec, event: RegistrationChanged) -> None:
        status = self._status[spec.name]
        now = asyncio.get_running_loop().time()
        status.state, status.status = event.state, event.status
        status.expires_at = _wall(event.expires_at, now)
        status.next_attempt = _wall(event.next_attempt, now)
        metrics.registration_changed(spec.name, event.state == "registered", event.status)
        if event.state == "failing":
            wait = (event.next_attempt or now) - now
            log.warning("registration %s: failing (last status %s); next attempt in %.0f s", spec.name, event.status,
                        wait)  # fmt: skip
        else:
            expires = f", expires in {event.expires_at - now:.0f} s" if event.expires_at else ""
            log.info("registration %s: %s (status %s)%s", spec.name, event.state, event.status, expires)

    def report(self) -> list[dict[str, Any]]:
        """What ``/registrations`` shows: each registration's state, last status and times (Unix seconds)."""
        return [
            {
                "name": s.config.name,
                "registrar": s.config.registrar,
                "username": s.config.username,
                "trunk": s.config.trunk,
                "state": s.state,
                "last_status": s.status,
                "expires_at": s.expires_at,
                "next_attempt": s.next_attempt,
            }
            for s in self._status.values()
        ]

    async def stop(self, within: float) -> None:
        """Remove every binding (``Expires: 0``), waiting up to ``within`` seconds for the registrars."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.endpoint.registrations:
            await self.endpoint.unregister_all(within)


def _wall(loop_time: float | None, loop_now: float) -> float | None:
    return None if loop_time is None else round(time.time() + (loop_time - loop_now), 3)
