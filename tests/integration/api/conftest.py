"""A fresh sipbridge process per test, on the embedded store or on the shared Redis (its SIP hashes emptied)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.bridge import BridgeProcess
from harness.processes import RedisServer
from harness.sipapi import clear_sip_tables


@pytest.fixture(params=["embedded", "redis"])
def bridge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BridgeProcess]:
    redis_server: RedisServer | None = None
    if request.param == "redis":
        redis_server = request.getfixturevalue("redis_server")
        clear_sip_tables(redis_server)
    with BridgeProcess(tmp_path / "bridge", redis=redis_server) as process:
        yield process
