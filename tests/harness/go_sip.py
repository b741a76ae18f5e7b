"""LiveKit's Go SIP service (github.com/livekit/sip) beside sipbridge, both as cluster nodes of one livekit-server on
Redis: where the Go binary is, and a node of each kind with the same surface (its SIP port, its process, its
``/metrics``). The benchmark (bench/bench_vs_go.py) and the compatibility tests (tests/integration/compat) use them."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any, Protocol

import yaml

from .binaries import bin_dir
from .bridge import BridgeProcess
from .ports import LOOPBACK, free_tcp_port, free_tcp_udp_port, free_udp_range
from .processes import LiveKitServer, ManagedProcess, RedisServer, udp_bound

GO_SIP_ENV = "SIPBRIDGE_GO_SIP"


def configured_go_sip() -> Path:
    """Where the Go service's binary should be: ``$SIPBRIDGE_GO_SIP``, else where `scripts/install-peers
    livekit-sip` puts it."""
    return Path(os.environ.get(GO_SIP_ENV) or bin_dir() / "livekit-sip")


def go_sip_binary() -> Path | None:
    """The Go service's binary, or None when `configured_go_sip` is not an executable."""
    path = configured_go_sip()
    return path if path.is_file() and os.access(path, os.X_OK) else None


def go_version(binary: Path) -> str:
    """The version a binary was built as: its ``.version`` pin file beside it, else what ``--version`` prints."""
    pin = binary.with_name(binary.name + ".version")
    if pin.is_file():
        return pin.read_text().strip()
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except OSError as exc:
        return f"unknown ({exc})"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[-1] if text else "unknown"


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


class Node(Protocol):
    """A SIP node beside livekit-server: where its SIP listens, its process, and its metrics."""

    name: str
    sip_port: int

    @property
    def pid(self) -> int: ...

    def start(self) -> None: ...

    def stop(self) -> int | None: ...

    def metrics_text(self) -> str: ...


class SipbridgeNode:
    """sipbridge as a cluster node (redis, no api_port), at info logging like the Go service."""

    name = "sipbridge"

    def __init__(
        self, workdir: Path, server: LiveKitServer, redis: RedisServer, extra: dict[str, Any] | None = None
    ) -> None:
        config = {"logging": {"level": "info"}, "drain_timeout": 1, **(extra or {})}
        self.bridge = BridgeProcess(workdir, livekit=server, redis=redis, cluster=True, extra=config)
        self.sip_port = self.bridge.sip_port

    def start(self) -> None:
        self.bridge.start()

    @property
    def pid(self) -> int:
        return self.bridge.process.pid

    def stop(self) -> int | None:
        return self.bridge.stop()

    def metrics_text(self) -> str:
        return self.bridge.metrics_text()

    def log_text(self) -> str:
        return self.bridge.log_text()


class GoSipNode:
    """LiveKit's Go SIP service (`livekit-sip --config`), configured as its README runs it beside livekit-server:
    the server's keys and ws_url, the same Redis, and everything on loopback (signalling and media bound to and
    announced as 127.0.0.1). Its health server binds all interfaces in the Go code: it gets a free port; pprof stays
    off; Prometheus serves on `metrics_port`."""

    name = "go"

    def __init__(
        self,
        workdir: Path,
        binary: Path,
        server: LiveKitServer,
        redis: RedisServer,
        *,
        rtp_ports: int = 400,
        extra: dict[str, Any] | None = None,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_tcp_udp_port()
        self.health_port = free_tcp_port()
        self.metrics_port = free_tcp_port()
        rtp_start = free_udp_range(rtp_ports)
        config = {
            "api_key": server.api_key,
            "api_secret": server.api_secret,
            "ws_url": server.ws_url,
            "redis": {"address": redis.address},
            "sip_port": self.sip_port,
            "rtp_port": f"{rtp_start}-{rtp_start + rtp_ports - 1}",
            "health_port": self.health_port,
            "prometheus_port": self.metrics_port,
            "listen_ip": LOOPBACK,
            "nat_1_to_1_ip": LOOPBACK,
            "logging": {"level": "info"},
            # 1.0: never refuse work for CPU load (it would at 90 % of the machine by default): this machine is
            # shared with the callers, the agents and livekit-server, and the tests' sipbridge nodes do the same.
            "max_cpu_utilization": 1.0,
            **(extra or {}),
        }
        config_path = workdir / "config.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "SIP_CONFIG_"))}
        argv: list[str | os.PathLike[str]] = [binary, "--config", config_path]
        self.process = ManagedProcess("livekit-sip", argv, workdir / "livekit-sip.log", env=env)

    def start(self) -> None:
        # Ready once its SIP port is bound (older releases serve no health endpoint).
        self.process.start_and_wait(udp_bound(LOOPBACK, self.sip_port), what="listening for SIP", timeout=30)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> int | None:
        # The first SIGTERM drains calls; the second stops at once.
        return self.process.stop(sigterms=2)

    def metrics_text(self) -> str:
        return scrape(self.metrics_port)

    def log_text(self) -> str:
        return self.process.log_text()
