"""Fixtures: a sipp runner and our Endpoint on free loopback ports, both cleaned up after each test."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from sipp_harness import EndpointFactory, Handler, Sipp, free_port

from sipbridge.sip import Endpoint
from sipbridge.sip.settings import SipSettings


@pytest.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[Sipp]:
    if shutil.which("sipp") is None:
        pytest.skip("sipp not installed")
    runner = Sipp(tmp_path)
    yield runner
    runner.kill()


@pytest.fixture
async def endpoint() -> AsyncIterator[EndpointFactory]:
    """Start our Endpoint on a free loopback port; closed after the test."""
    started: list[Endpoint] = []

    async def make(handler: Handler | None = None, **settings: object) -> Endpoint:
        base = SipSettings(bind_host="127.0.0.1", port=free_port())
        ep = Endpoint(replace(base, **settings))  # type: ignore[arg-type]
        await ep.start()
        if handler is not None:
            ep.take_calls(handler)
        started.append(ep)
        return ep

    yield make
    for ep in started:
        await ep.close()
