"""docker-compose.yaml is a deliverable we cannot run here (no Docker engine), so we validate it for real."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from harness.binaries import require_binary

from sipbridge.config import parse_config

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


def compose_command() -> list[str]:
    """`docker compose` when the Docker CLI has the plugin (scripts/install-peers puts it there), else the plugin."""
    plugin = require_binary("docker-compose")
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    return [str(plugin)]


def test_docker_compose_config_validates() -> None:
    result = subprocess.run(
        [*compose_command(), "-f", str(ROOT / "docker-compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_compose_runs_the_three_services_like_livekits_own_file() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["services"]
    assert set(services) == {"redis", "livekit", "sip"}
    assert all(s["network_mode"] == "host" for s in services.values())
    assert services["livekit"]["command"] == "--dev --redis-host localhost:6379"
    config = parse_config(services["sip"]["environment"]["SIP_CONFIG_BODY"], {})
    assert config.redis is not None and config.redis.address == "localhost:6379"
    assert (config.sip_port, str(config.rtp_port)) == (5060, "10000-20000")
    assert config.api_port is None  # a cluster node: livekit-server serves the SIP API
