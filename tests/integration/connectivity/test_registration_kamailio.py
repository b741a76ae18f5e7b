"""The bridge registered with a real registrar: Kamailio's registrar, usrloc (in memory) and auth modules.

It registers (answering the digest challenge), refreshes, registers again after the registrar restarted and forgot
it, and removes its binding on SIGTERM; a call the registrar sends to the registered user lands in a room through the
trunk the registration names, although the registrar's address is not in that trunk's allowed_addresses."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from pathlib import Path

import pytest
import yaml
from harness.audio import dominant_frequency
from harness.bridge import BridgeProcess, api_client
from harness.inbound_setup import configure, direct
from harness.participant import RATE, TestParticipant
from harness.ports import LOOPBACK, free_tcp_udp_port
from harness.processes import LiveKitServer, ManagedProcess, udp_bound
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("kamailio") is None or shutil.which("kamcmd") is None,
        reason="kamailio is not installed (scripts/install-peers installs it)",
    ),
]

CONFIG = Path(__file__).with_name("kamailio_registrar.cfg")
USER, PASSWORD = "1001", "s3cret"
CALLER_TONE, AGENT_TONE = 500.0, 1000.0


class KamailioRegistrar:
    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = free_tcp_udp_port()
        self.ctl = workdir / "ctl.sock"
        text = CONFIG.read_text().replace("SIP_PORT", str(self.port)).replace("CTL_SOCKET", f"unixs:{self.ctl}")
        self.config = workdir / "kamailio.cfg"
        self.config.write_text(text.replace("USERNAME", USER).replace("PASSWORD", PASSWORD))
        self.starts = 0
        self.process: ManagedProcess | None = None

    def start(self) -> None:
        self.starts += 1
        argv = ["kamailio", "-f", self.config, "-DD", "-E", "-m", "16", "-M", "4", "-w", self.workdir]
        self.process = ManagedProcess("kamailio", argv, self.workdir / f"kamailio-{self.starts}.log", cwd=self.workdir)
        self.process.start_and_wait(lambda: udp_bound(LOOPBACK, self.port)() and self.ctl.exists(), what="listening")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.ctl.unlink(missing_ok=True)

    async def bindings(self) -> str:
        """`kamcmd ul.dump`: every registered contact."""
        proc = await asyncio.create_subprocess_exec(
            "kamcmd", "-s", f"unixs:{self.ctl}", "ul.dump",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
        return out.decode(errors="replace")

    async def wait_bound(self, present: bool, within: float = 60.0) -> str:
        """Wait until our contact is (or is no longer) registered; polling kamcmd is the only way to watch it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            dump = await self.bindings()
            if ("sipbridge-reg=" in dump) == present:
                return dump
            if loop.time() > deadline:
                raise AssertionError(f"contact {'never registered' if present else 'still registered'}:\n{dump}")
            await asyncio.sleep(0.2)


async def logged(bridge: BridgeProcess, text: str, *, times: int, within: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while len(bridge.process.grep_log(text)) < times:
        assert loop.time() < deadline, f"{text!r} not logged {times} times within {within} s"
        await asyncio.sleep(0.2)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


async def registrations(bridge: BridgeProcess) -> list[dict[str, object]]:
    return list(json.loads(await asyncio.to_thread(fetch, f"http://{LOOPBACK}:{bridge.health_port}/registrations")))


async def test_registers_takes_calls_survives_a_registrar_restart_and_unregisters(
    tmp_path: Path, livekit_server: LiveKitServer, livekit_api: api.LiveKitAPI, rtp_phone: RtpPhone
) -> None:
    registrar = KamailioRegistrar(tmp_path / "kamailio")
    registrar.start()
    try:
        bridge = BridgeProcess(tmp_path / "bridge", livekit=livekit_server)
        with bridge:
            # a trunk that admits nobody by address: only the registration lets calls in
            async with api_client(bridge) as client:
                trunk = await configure(client, direct("pbx-room"), numbers=[], allowed_addresses=["192.0.2.1"])
        config = yaml.safe_load(bridge.config_path.read_text())
        config["registrations"] = [{
            "name": "pbx", "registrar": f"sip:{LOOPBACK}:{registrar.port}", "username": USER, "password": PASSWORD,
            "expires": 10, "trunk": trunk.sip_trunk_id,
        }]  # fmt: skip
        bridge.config_path.write_text(yaml.safe_dump(config))
        bridge.restart()
        try:
            dump = await registrar.wait_bound(True)
            assert f"AoR: {USER}" in dump
            (state,) = await registrations(bridge)
            assert (state["name"], state["state"], state["last_status"]) == ("pbx", "registered", 200)
            metrics = await asyncio.to_thread(fetch, f"http://{LOOPBACK}:{bridge.metrics_port}/metrics")
            assert b'sipbridge_registration_registered{registration="pbx"} 1.0' in metrics

            # A call to the registered user: Kamailio sends it to our Contact, the named trunk admits it, and the
            # agent in the room hears the caller.
            phone = SippPhone(tmp_path / "phone", registrar.port, rtp_phone.port, to=USER)
            rtp_phone.play_tone(CALLER_TONE)
            async with TestParticipant(
                livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, "pbx-room", "agent"
            ) as agent:
                await agent.publish_tone(AGENT_TONE)
                calling = asyncio.create_task(phone.call(hold_ms=4000))
                heard = await agent.wait_heard("sip_+13105550100", 2.0)
                assert abs(dominant_frequency(heard[-RATE:], RATE) - CALLER_TONE) < 5
                (await calling).check()
            assert bridge.process.grep_log("sent over registration pbx: admitted by trunk")

            # Refreshes keep it registered (a 10 s interval is refreshed every 5 s).
            await logged(bridge, "registration pbx: registered", times=3)

            # The registrar restarts and forgets every binding: the next refresh registers again.
            registrar.stop()
            registrar.start()
            assert "sipbridge-reg=" not in await registrar.bindings()
            await registrar.wait_bound(True)
        finally:
            bridge.stop()  # SIGTERM: un-REGISTER while draining
        await registrar.wait_bound(False, within=5)
        assert bridge.process.grep_log("registration pbx: unregistered")
    finally:
        registrar.stop()
