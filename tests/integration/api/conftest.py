"""A fresh sipbridge process per test, on the embedded store or on the shared Redis (its SIP hashes emptied)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from harness.bridge import BridgeProcess
from harness.processes import RedisServer

SIP_TABLES = ("sip_trunk", "sip_inbound_trunk", "sip_outbound_trunk", "sip_dispatch_rule")


def clear_sip_tables(server: RedisServer) -> None:
    """Empty the SIP hashes only: livekit-server keeps its own state in the same Redis."""
    client = redis.Redis(host=server.host, port=server.port)
    try:
        client.delete(*SIP_TABLES)
    finally:
        client.close()


@pytest.fixture(params=["embedded", "redis"])
def bridge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BridgeProcess]:
    redis_server: RedisServer | None = None
    if request.param == "redis":
        redis_server = request.getfixturevalue("redis_server")
        clear_sip_tables(redis_server)
    with BridgeProcess(tmp_path / "bridge", redis=redis_server) as process:
        yield process
