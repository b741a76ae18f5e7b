"""use_external_ip: STUN discovery against a real STUN server (Kamailio's stun module) on loopback."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from sipp_harness import free_port, wait_bound

from sipbridge.sip import Endpoint
from sipbridge.sip.settings import SipSettings
from sipbridge.sip.stun import discover_external_ip

CONFIG = Path(__file__).with_name("kamailio_stun.cfg")


@pytest.fixture
async def stun_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    if shutil.which("kamailio") is None:
        pytest.skip("kamailio not installed")
    port = free_port()
    config = tmp_path / "stun.cfg"
    config.write_text(CONFIG.read_text().replace("LISTEN_PORT", str(port)))
    proc = await asyncio.create_subprocess_exec(
        "kamailio", "-f", str(config), "-DD", "-E", "-m", "8", "-M", "2", "-w", str(tmp_path),
        "-P", str(tmp_path / "stun.pid"), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await wait_bound(port)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except TimeoutError:
        proc.kill()


async def test_discovery_through_a_real_stun_server(stun_server: str) -> None:
    unused = f"127.0.0.1:{free_port()}"
    assert await discover_external_ip([unused, stun_server], wait=1.5) == "127.0.0.1"


async def test_endpoint_advertises_the_discovered_address(stun_server: str) -> None:
    endpoint = Endpoint(SipSettings(bind_host="127.0.0.1", port=0, use_external_ip=True, stun_servers=(stun_server,)))
    await endpoint.start()
    try:
        assert endpoint.settings.advertised_host == "127.0.0.1"
    finally:
        await endpoint.close()
