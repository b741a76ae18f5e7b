"""Talking to a bridge's call inspector (``inspector_port``) as an operator would: with a SIP admin token.

`InspectorClient` reads the JSON API and the pages; `wait_call` waits until a call matching a condition shows;
`sipp_exchange` reads a sipp message log into the (first line, sent by sipp) sequence the inspector should show.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from livekit import api

from .bridge import BridgeProcess
from .ports import LOOPBACK, free_tcp_port

_SIPP_ENTRY = re.compile(r"(?m)^(?:UDP|TCP|TLS) message (sent|received)[^\n]*\n\n([^\r\n]+)")


class InspectedBridge(BridgeProcess):
    """A `BridgeProcess` with its inspector on a free loopback port (`inspector_url`)."""

    def __init__(self, workdir: Path, *, extra: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.inspector_port = free_tcp_port()
        super().__init__(workdir, extra={"inspector_port": self.inspector_port, **(extra or {})}, **kwargs)

    @property
    def inspector_url(self) -> str:
        return f"http://{LOOPBACK}:{self.inspector_port}"


def admin_token(api_key: str, api_secret: str, *, admin: bool = True) -> str:
    grants = api.SIPGrants(admin=admin, call=not admin)
    return api.AccessToken(api_key, api_secret).with_identity("operator").with_sip_grants(grants).to_jwt()


def label_of(first_line: str) -> str:
    """What the inspector calls a message: ``INVITE`` or ``200 OK``."""
    parts = first_line.split(" ", 2)
    return f"{parts[1]} {parts[2]}" if first_line.startswith("SIP/2.0") else parts[0]


def sipp_exchange(messages_log: str) -> list[tuple[str, bool]]:
    """(label, sent by sipp) of every message in a sipp ``-trace_msg`` log, in order."""
    return [(label_of(line), kind == "sent") for kind, line in _SIPP_ENTRY.findall(messages_log)]


class InspectorClient:
    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.session = aiohttp.ClientSession(headers=headers)

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str, **headers: str) -> tuple[int, str, bytes]:
        """(status, content type, body) of a GET."""
        async with self.session.get(self.base_url + path, headers=headers, allow_redirects=False) as response:
            return response.status, response.content_type, await response.read()

    async def json(self, path: str) -> Any:
        async with self.session.get(self.base_url + path) as response:
            assert response.status == 200, f"{path}: {response.status} {await response.text()}"
            return await response.json()

    async def wait_call(
        self, condition: Callable[[dict[str, Any]], bool], what: str, within: float = 60.0
    ) -> dict[str, Any]:
        """The first call (live or ended, as the JSON list shows it) for which `condition` holds."""
        deadline = time.monotonic() + within
        while True:
            listed = await self.json("/api/calls")
            calls: list[dict[str, Any]] = listed["active"] + listed["ended"]
            for call in calls:
                if condition(call):
                    return call
            if time.monotonic() > deadline:
                raise AssertionError(f"no call {what} within {within} s: {listed}")
            await asyncio.sleep(0.2)
