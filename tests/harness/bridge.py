"""The sipbridge service under test, run as a real process from a generated config.yaml."""

from __future__ import annotations

import os
import re
import secrets
import sys
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml
from livekit import api

from .lk import LiveKitEndpoint
from .ports import LOOPBACK, free_tcp_port, free_tcp_udp_port, free_udp_range
from .processes import LiveKitServer, ManagedProcess, RedisServer, http_ok

# A ws_url nobody listens on, for bridges whose tests never join a room (so no dev livekit-server is started).
UNUSED_WS_URL = "ws://127.0.0.1:9"
RTP_PORTS = 100

default_room_transport: str | None = None
"""The `room_transport` of bridges whose test names none (pytest --room-transport); None: the bridge's default."""


@asynccontextmanager
async def api_client(target: LiveKitEndpoint) -> AsyncIterator[api.LiveKitAPI]:
    """``async with api_client(bridge) as client:`` a livekit-api client of `target` (a bridge, a cluster node or
    a livekit-server: anything with `http_url`, `api_key` and `api_secret`), closed when the block ends."""
    client = api.LiveKitAPI(target.http_url, target.api_key, target.api_secret)
    try:
        yield client
    finally:
        await client.aclose()


class BridgeProcess:
    """``python -m sipbridge --config <workdir>/config.yaml`` on free loopback ports.

    With a `RedisServer` the store is Redis, else the embedded file in `workdir` (kept across `restart`).
    `http_url`, `api_key` and `api_secret` make it a target for the `lk` runner and the livekit-api client.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        livekit: LiveKitServer | None = None,
        redis: RedisServer | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        extra: dict[str, Any] | None = None,
        cluster: bool = False,
        room_transport: str | None = None,
    ) -> None:
        """`cluster`: a cluster node (Redis, no standalone API) serving `livekit` over psrpc; needs `redis`.
        `room_transport`: "sdk" or "lean" (default: `default_room_transport`)."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.api_port = free_tcp_port()
        self.health_port = free_tcp_port()
        self.metrics_port = free_tcp_port()
        self.sip_port = free_tcp_udp_port()
        rtp_start = free_udp_range(RTP_PORTS)
        self.rtp_ports = (rtp_start, rtp_start + RTP_PORTS - 1)
        self.api_key = livekit.api_key if livekit else api_key or f"API{secrets.token_hex(6)}"
        self.api_secret = livekit.api_secret if livekit else api_secret or secrets.token_urlsafe(32)
        config: dict[str, Any] = {
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "ws_url": livekit.ws_url if livekit else UNUSED_WS_URL,
            "api_port": self.api_port,
            "health_port": self.health_port,
            "prometheus_port": self.metrics_port,
            "listen_ip": LOOPBACK,
            "sip_port": self.sip_port,
            "rtp_port": f"{self.rtp_ports[0]}-{self.rtp_ports[1]}",
            "storage": {"path": str(workdir / "store.db")},
            "logging": {"level": "debug"},
            "drain_timeout": 1,  # a test stopping a bridge mid-call does not wait for its calls
            # Tests share two cores with livekit-server, Redis, sipp and agents: the machine is often this busy,
            # and refusing calls for it would make a test's outcome depend on the machine's load.
            "max_cpu_utilization": 1.0,
        }
        room_transport = room_transport or default_room_transport
        if room_transport is not None:
            config["room_transport"] = room_transport
        if redis is not None:
            config["redis"] = {"address": redis.address}
        if cluster:
            assert redis is not None, "a cluster node needs Redis"
            del config["api_port"]
        config.update(extra or {})
        self.config_path = workdir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._starts = 0
        self.process = self._new_process()

    def _new_process(self) -> ManagedProcess:
        self._starts += 1
        argv = [sys.executable, "-m", "sipbridge", "--config", str(self.config_path)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "SIP_CONFIG_"))}
        return ManagedProcess("sipbridge", argv, self.workdir / f"sipbridge-{self._starts}.log", env=env)

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}"

    @property
    def health_url(self) -> str:
        return f"http://{LOOPBACK}:{self.health_port}/"

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def metrics(self) -> dict[str, float]:
        """The bridge's Prometheus samples without labels (e.g. ``sipbridge_active_calls``)."""
        return {name: value for (name, labels), value in self.labelled_metrics().items() if not labels}

    def labelled_metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every Prometheus sample, by name and labels: ``(name, frozenset({("dir", "in"), ...}))``."""
        samples = {}
        for line in self.metrics_text().splitlines():
            if not line or line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            name, _, labels = series.partition("{")
            pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels)
            samples[(name, frozenset(pairs))] = float(value)
        return samples

    def start(self) -> None:
        self.process.start()
        self.process.wait_until(http_ok(self.health_url), what="ready (health 200)", timeout=30.0)

    def stop(self) -> int | None:
        return self.process.stop()

    def restart(self) -> None:
        self.stop()
        self.process = self._new_process()
        self.start()

    def log_text(self) -> str:
        return self.process.log_text()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
