"""Shared fixtures: real peers (Redis, livekit-server, lk) started once per session on free loopback ports.

Servers are session-scoped because starting them costs more than most tests; tests keep apart by using a
fresh room name from `tmp_room`. Every server is stopped at session end, also when tests fail, and the
harness kills them with the runner if pytest itself dies (see harness.processes).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import harness.bridge
import pytest
from harness.binaries import require_binary
from harness.bridge import api_client
from harness.lk import LiveKitEndpoint, LkRunner
from harness.names import unique_room_name
from harness.processes import LiveKitServer, RedisServer
from harness.rtp_phone import RtpPhone
from livekit import api


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--room-transport",
        choices=("sdk", "lean"),
        default=None,
        help="room transport (config room_transport) of every bridge process the tests start; default: the bridge's",
    )


def pytest_configure(config: pytest.Config) -> None:
    harness.bridge.default_room_transport = config.getoption("--room-transport")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """An empty in-memory redis-server; `.address` is host:port, `.url` redis://."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def livekit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKitServer]:
    """A single-node livekit-server without Redis; `.ws_url`, `.http_url`, `.api_key`, `.api_secret`."""
    with LiveKitServer(tmp_path_factory.mktemp("livekit")) as server:
        yield server


@pytest.fixture(scope="session")
def livekit_server_redis(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[LiveKitServer]:
    """A livekit-server routing through `redis_server`, as in a cluster or beside a psrpc SIP service."""
    with LiveKitServer(tmp_path_factory.mktemp("livekit-redis"), redis=redis_server) as server:
        yield server
        # Over the whole session, the bridge's psrpc must never have made this server panic or log a psrpc error.
        trouble = server.process.grep_log(re.compile(r"panic|\tERROR\tlivekit\.psrpc"))
        assert not trouble, f"livekit-server (Redis) logged psrpc trouble: {trouble[:3]}"


@pytest.fixture
def lk(request: pytest.FixtureRequest, tmp_path: Path) -> LkRunner:
    """Runs the real lk CLI; targets `livekit_server` unless given url/api_key/api_secret or target=."""

    def shared_livekit_server() -> LiveKitEndpoint:
        server: LiveKitServer = request.getfixturevalue("livekit_server")
        return server

    return LkRunner(require_binary("lk"), tmp_path / "lk", shared_livekit_server)


@pytest.fixture
def tmp_room(request: pytest.FixtureRequest) -> str:
    """A room name no other test uses: the test's name plus a random suffix."""
    return unique_room_name(request.node.name)


@pytest.fixture
async def livekit_api(livekit_server: LiveKitServer) -> AsyncIterator[api.LiveKitAPI]:
    """A server-SDK client of the shared livekit-server."""
    async with api_client(livekit_server) as client:
        yield client


@pytest.fixture
async def rtp_phone() -> AsyncIterator[RtpPhone]:
    """The media half of a test phone (or callee): an RTP socket that plays a tone and records what it hears."""
    phone = RtpPhone()
    await phone.start()
    yield phone
    await phone.close()
