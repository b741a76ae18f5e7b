"""What the inspector sends to Homer and what it shows of a registration, with real peers: a bridge registered
with Kamailio's registrar (digest challenge and all) exports every traced message over HEP v3 to a Kamailio
sipcapture node (the capture server Homer 5 is built on), which decodes each one from the address it came from;
the registration shows in the inspector as one trace, and neither it nor HEP gives away the password."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from harness.inspector import InspectedBridge, InspectorClient, admin_token
from harness.ports import LOOPBACK, free_tcp_udp_port, free_udp_port
from harness.processes import ManagedProcess, udp_bound
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import SippPhone

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio is not installed (scripts/install-peers)"),
]

CAPTURE_CONFIG = Path(__file__).with_name("kamailio_hep.cfg")
REGISTRAR_CONFIG = Path(__file__).parents[1] / "connectivity" / "kamailio_registrar.cfg"
USER, PASSWORD = "1001", "Gr4nite-Harbour-51"
_CAPTURED = re.compile(r"HEP-CAPTURED (\S+) (\S+) (\S+)\n(.*?)\nHEP-END", re.S)


def kamailio(workdir: Path, name: str, config: str, port: int) -> ManagedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"{name}.cfg"
    path.write_text(config)
    argv = ["kamailio", "-f", str(path), "-DD", "-E", "-m", "16", "-M", "4", "-w", str(workdir)]
    process = ManagedProcess(f"kamailio-{name}", argv, workdir / f"{name}.log", cwd=workdir)
    process.start_and_wait(udp_bound(LOOPBACK, port), what="listening")
    return process


def captured(process: ManagedProcess) -> list[tuple[str, str, str, str]]:
    """(method or status, Call-ID, source address, message) of every SIP message the capture node decoded."""
    return _CAPTURED.findall(process.log_text())


async def wait_for(condition: Any, what: str, within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while not (result := await condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.2)
    return result


async def test_registration_and_calls_reach_homer_over_hep_and_show_in_the_inspector(
    tmp_path: Path, rtp_phone: RtpPhone
) -> None:
    hep_port, registrar_port = free_udp_port(), free_tcp_udp_port()
    db = tmp_path / "capture" / "db"
    db.mkdir(parents=True)
    capture_text = CAPTURE_CONFIG.read_text().replace("HEP_PORT", str(hep_port)).replace("DB_DIR", str(db))
    capture = kamailio(tmp_path / "capture", "capture", capture_text, hep_port)
    registrar_text = REGISTRAR_CONFIG.read_text().replace("SIP_PORT", str(registrar_port))
    registrar_text = registrar_text.replace("CTL_SOCKET", f"unixs:{tmp_path / 'ctl.sock'}")
    registrar_text = registrar_text.replace("USERNAME", USER).replace("PASSWORD", PASSWORD)
    registrar = kamailio(tmp_path / "registrar", "registrar", registrar_text, registrar_port)
    extra = {
        "inspector": {"hep": f"{LOOPBACK}:{hep_port}", "hep_capture_id": 2001},
        "registrations": [{"name": "pbx", "registrar": f"sip:{LOOPBACK}:{registrar_port}", "username": USER,
                           "password": PASSWORD, "transport": "udp", "keepalive_interval": 0}],
    }  # fmt: skip
    try:
        with InspectedBridge(tmp_path / "bridge", extra=extra) as bridge:
            inspector = InspectorClient(bridge.inspector_url, admin_token(bridge.api_key, bridge.api_secret))
            try:

                async def registered() -> dict[str, Any] | None:
                    listed = await inspector.json("/api/calls")
                    done = [r for r in listed["registrations"] if r["status"] == "registered"]
                    return done[0] if done else None

                registration = await wait_for(registered, "the registration registered")
                assert registration["to"] == f"{USER}@{LOOPBACK}" and not registration["ended"]
                detail = await inspector.json(f"/api/calls/{registration['id']}")
                labels = [m["label"] for m in detail["messages"]]
                assert labels == ["REGISTER", "401 Unauthorized", "REGISTER", "200 OK"]
                index = (await inspector.get("/", Accept="text/html"))[2]
                assert b'<table id="registrations">' in index and b"registered" in index

                # A call nobody takes (no trunk, no rule): refused, traced, exported.
                phone = SippPhone(tmp_path / "sipp", bridge.sip_port, rtp_phone.port, call_id="hep-call@test")
                (await phone.call_expecting(404)).check()
                call = await inspector.wait_call(lambda c: c["call_id"] == "hep-call@test" and c["ended"], "404")
                call_detail = await inspector.json(f"/api/calls/{call['id']}")
                exported = detail["messages"] + call_detail["messages"]

                async def all_captured() -> bool:
                    return len(captured(capture)) >= len(exported)

                await wait_for(all_captured, "every traced message at the capture node")
                homer = captured(capture)  # before the bridge stops (its un-REGISTER is exported then)
            finally:
                await inspector.close()
    finally:
        registrar.stop()
        capture.stop()

    # Homer got each message, from where it came, in the order it was traced; masked like everything shown,
    # the un-REGISTER at shutdown too.
    expected = [(m["label"].split(" ")[0], m["call_id"], m["from"]) for m in exported]
    assert [(what, call_id, source) for what, call_id, source, _ in homer] == expected
    everything = captured(capture)
    assert [what for what, *_ in everything[len(homer) :]] == ["REGISTER", "401", "REGISTER", "200"]
    assert all(PASSWORD not in text for *_, text in everything)
    assert any('response="***"' in text for *_, text in everything)
