"""Starting the real `sipbridge` command: the embedded default, config errors, health while starting and draining."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from harness import docs_examples as docs
from harness.bridge import BridgeProcess, api_client
from harness.lk import LkRunner
from harness.processes import ManagedProcess, http_ok, tcp_accepts
from livekit import api

pytestmark = pytest.mark.integration

DEV_LIVEKIT_PORT = 7880
DEFAULT_API_PORT = 8090


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "SIP_CONFIG_", "XDG_"))}
    env["XDG_DATA_HOME"] = str(home / "data")
    return env


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def run_sipbridge(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sipbridge", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("rtp_port: 20000-10000\n", "rtp_port"),
        ("api_key: k\nws_url: ws://lk:7880\n", "api_secret"),
        ("sip_port: 5060\n  oops: [\n", "config: invalid YAML"),
    ],
)
def test_invalid_config_stops_startup_with_one_line(tmp_path: Path, body: str, key: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(body)
    result = run_sipbridge("--config", str(config), env=clean_env(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], result.stderr


def test_config_from_environment_body(tmp_path: Path) -> None:
    env = clean_env(tmp_path) | {"SIP_CONFIG_BODY": "rtp_port: 5-1\n"}
    result = run_sipbridge(env=env)
    assert result.returncode == 2 and "rtp_port" in result.stderr


def test_embedded_default_runs_the_api_and_a_local_livekit_server(tmp_path: Path, lk: LkRunner) -> None:
    for port in (DEV_LIVEKIT_PORT, DEFAULT_API_PORT):
        assert port_free(port), f"port {port} is in use; the embedded default needs it"
    process = ManagedProcess(
        "sipbridge", [sys.executable, "-m", "sipbridge"], tmp_path / "sipbridge.log", env=clean_env(tmp_path)
    )
    process.start()
    try:
        process.wait_until(lambda: "ready" in process.log_text(), what="ready", timeout=60)
        log = process.log_text()
        assert "started livekit-server --dev" in log
        assert f":{DEFAULT_API_PORT}/twirp/livekit.SIP/" in log
        assert "embedded database" in log and str(tmp_path / "data" / "sipbridge" / "store.db") in log
        assert tcp_accepts("127.0.0.1", DEV_LIVEKIT_PORT)()
        url = f"http://127.0.0.1:{DEFAULT_API_PORT}"
        out = lk("sip", "inbound", "create", "t.json", url=url, api_key="devkey", api_secret="secret",
                 input_files={"t.json": docs.INBOUND_TRUNK})  # fmt: skip
        assert "SIPTrunkID: ST_" in out.stdout
        # The dev livekit-server beside us serves rooms with the same keys.
        rooms = lk("room", "list", url=f"http://127.0.0.1:{DEV_LIVEKIT_PORT}", api_key="devkey", api_secret="secret")
        assert rooms.returncode == 0
    finally:
        status = process.stop(grace=15)
    assert status == 0, process.log_tail()
    deadline = time.monotonic() + 10
    while not port_free(DEV_LIVEKIT_PORT) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert port_free(DEV_LIVEKIT_PORT), "the dev livekit-server outlived the bridge"


def test_health_is_ready_then_draining(tmp_path: Path) -> None:
    bridge = BridgeProcess(tmp_path / "bridge")
    bridge.start()
    try:
        with urllib.request.urlopen(bridge.health_url, timeout=5) as response:
            assert (response.status, response.read()) == (200, b"ready\n")
    finally:
        status = bridge.stop()
    assert status == 0
    assert not http_ok(bridge.health_url)()


def test_go_service_config_runs_unchanged(tmp_path: Path) -> None:
    """The Go service's compose SIP_CONFIG_BODY, plus the standalone api_port, starts; of the Go keys added, only
    those with no effect here are reported, each with its reason."""
    compose = yaml.safe_load((Path(__file__).parents[3] / "docker-compose.yaml").read_text())
    body = yaml.safe_load(compose["services"]["sip"]["environment"]["SIP_CONFIG_BODY"])
    assert body["redis"]["address"] == "localhost:6379"
    own_ports = ("api_key", "api_secret", "ws_url", "redis", "api_port", "health_port")
    extra = {k: v for k, v in body.items() if k not in own_ports}
    extra |= {"media_timeout": "15s", "sip_ringing_interval": "1s", "add_record_route": True, "pprof_port": 6060}
    with BridgeProcess(tmp_path / "bridge", extra=extra) as bridge:
        log = bridge.log_text()
        assert "Go service keys with no effect in this bridge: pprof_port (no Go runtime to profile" in log
        assert "unknown keys" not in log and "not acted on" not in log


async def test_open_configuration_is_warned_about_at_startup(tmp_path: Path) -> None:
    """A catch-all dispatch rule with no inbound trunk lets anyone in; the bridge says so when it starts."""
    with BridgeProcess(tmp_path / "bridge") as bridge:
        async with api_client(bridge) as client:
            rule = api.SIPDispatchRule(dispatch_rule_direct=api.SIPDispatchRuleDirect(room_name="open-room"))
            await client.sip.create_dispatch_rule(
                api.CreateSIPDispatchRuleRequest(dispatch_rule=api.SIPDispatchRuleInfo(rule=rule))
            )
        assert "any caller from any address" not in bridge.log_text()
        bridge.restart()
        assert "any caller from any address" in bridge.log_text()
