"""A registrar that refuses our interval (423) and challenges us (401): sipp playing it (tests/sipp/uas_registrar.xml).
The bridge raises its interval to Min-Expires, answers the challenge, reports the granted interval, and takes its
binding back on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import pytest
from harness.bridge import BridgeProcess
from harness.ports import LOOPBACK, free_tcp_udp_port
from harness.processes import udp_bound

pytestmark = pytest.mark.integration

SCENARIO = Path(__file__).resolve().parents[2] / "sipp" / "uas_registrar.xml"


async def test_423_then_401_then_registered_then_unregistered(tmp_path: Path) -> None:
    port = free_tcp_udp_port()
    errors = tmp_path / "errors.log"
    sipp = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(SCENARIO), "-i", LOOPBACK, "-p", str(port), "-m", "1", "-timeout", "60s",
        "-timeout_error", "-nostdin", "-trace_err", "-error_file", str(errors),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    try:
        while not udp_bound(LOOPBACK, port)():
            assert sipp.returncode is None, (await sipp.communicate())[1].decode(errors="replace")
            await asyncio.sleep(0.05)
        registration = {"registrar": f"sip:{LOOPBACK}:{port}", "username": "1001", "password": "s3cret",
                        "expires": 60}  # fmt: skip
        bridge = BridgeProcess(tmp_path / "bridge", extra={"registrations": [registration]})
        with bridge:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while not bridge.process.grep_log("registration 1001@127.0.0.1: registered"):
                assert loop.time() < deadline, bridge.process.log_tail()
                await asyncio.sleep(0.1)
            url = f"http://{LOOPBACK}:{bridge.health_port}/registrations"
            (state,) = json.loads(await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read()))
            assert (state["state"], state["last_status"]) == ("registered", 200)
            assert 100 < state["expires_at"] - state["next_attempt"] + 60 <= 121  # refreshed 60 s before expiry
            assert bridge.process.grep_log("423, interval raised to 120 s")
        _, stderr = await asyncio.wait_for(sipp.communicate(), 30)
        detail = stderr.decode(errors="replace") + (errors.read_text() if errors.exists() else "")
        assert sipp.returncode == 0, detail
        assert bridge.process.grep_log("registration 1001@127.0.0.1: unregistered")
    finally:
        if sipp.returncode is None:
            sipp.kill()
            await sipp.wait()
