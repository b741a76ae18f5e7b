"""Mutual TLS against a real carrier edge: Kamailio's tls module demanding a client certificate from our CA.

The trunk named in ``tls.client_certs`` gets through and its call is answered by the callee behind Kamailio; a
trunk without a certificate fails with an error naming the trunk and the TLS refusal. On our own listener,
``tls.verify_clients`` turns away an ``openssl s_client`` without a certificate and serves one with it."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.bridge import BridgeProcess, api_client
from harness.certs import Cert, TestPki
from harness.ports import LOOPBACK, free_tcp_port, free_tcp_udp_port
from harness.processes import LiveKitServer, ManagedProcess, tcp_accepts
from harness.rtp_phone import RtpPhone
from harness.sipp_callee import SippCallee
from harness.tls_probe import s_client, sip_request
from livekit import api

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("kamailio") is None or not Path("/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so").exists(),
        reason="kamailio with kamailio-tls-modules is not installed (scripts/install-peers installs it)",
    ),
]

CONFIG = Path(__file__).with_name("kamailio_tls.cfg")
CALLEE = "+12135550100"


def kamailio_tls(workdir: Path, pki: TestPki, server: Cert, callee_port: int) -> tuple[ManagedProcess, int]:
    workdir.mkdir(parents=True, exist_ok=True)
    tls_port, udp_port = free_tcp_port(), free_tcp_udp_port()
    tls_cfg = workdir / "tls.cfg"
    tls_cfg.write_text(
        "[server:default]\nmethod = TLSv1.2+\nverify_certificate = yes\nrequire_certificate = yes\n"
        f"private_key = {server.key}\ncertificate = {server.cert}\nca_list = {pki.ca.cert}\n\n"
        "[client:default]\nverify_certificate = no\nrequire_certificate = no\n"
    )
    text = CONFIG.read_text()
    for name, value in (("TLS_PORT", tls_port), ("UDP_PORT", udp_port), ("CALLEE_PORT", callee_port)):
        text = text.replace(name, str(value))
    config = workdir / "kamailio.cfg"
    config.write_text(text.replace("TLS_CFG", str(tls_cfg)))
    argv = ["kamailio", "-f", config, "-DD", "-E", "-m", "16", "-M", "4", "-w", workdir]
    return ManagedProcess("kamailio", argv, workdir / "kamailio.log", cwd=workdir), tls_port


async def test_trunk_with_a_client_certificate_reaches_a_carrier_that_demands_one(
    tmp_path: Path, livekit_server: LiveKitServer, livekit_api: api.LiveKitAPI, rtp_phone: RtpPhone
) -> None:
    pki = TestPki(tmp_path / "pki")
    carrier = pki.issue("carrier", dns=("carrier.test",), ips=(LOOPBACK,))
    ours = pki.issue("bridge", dns=("bridge.test",), ips=(LOOPBACK,))
    callee = SippCallee(tmp_path / "callee", rtp_phone.port)
    kamailio, tls_port = kamailio_tls(tmp_path / "kamailio", pki, carrier, callee.port)
    tls: dict[str, Any] = {
        "port": free_tcp_port(), "certs": [{"cert_file": str(ours.cert), "key_file": str(ours.key)}],
        "ca_file": str(pki.ca.cert),
    }  # fmt: skip
    with kamailio:
        kamailio.wait_until(tcp_accepts(LOOPBACK, tls_port), what="TLS listening")
        bridge = BridgeProcess(tmp_path / "bridge", livekit=livekit_server, extra={"tls": tls})
        with bridge:
            async with api_client(bridge) as client:
                trunk_ids = []
                for name in ("with-cert", "without-cert"):
                    trunk = api.SIPOutboundTrunkInfo(
                        name=name, address=f"{LOOPBACK}:{tls_port}", numbers=["+15105550100"],
                        transport=api.SIPTransport.SIP_TRANSPORT_TLS,
                    )  # fmt: skip
                    created = await client.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=trunk))
                    trunk_ids.append(created.sip_trunk_id)
            with_cert, without_cert = trunk_ids
            # The certificate is named for one trunk only (the store outlives the restart).
            config = yaml.safe_load(bridge.config_path.read_text())
            config["tls"]["client_certs"] = [
                {"cert_file": str(ours.cert), "key_file": str(ours.key), "trunks": [with_cert]}
            ]
            bridge.config_path.write_text(yaml.safe_dump(config))
            bridge.restart()
            async with api_client(bridge) as client:
                request = api.CreateSIPParticipantRequest(
                    sip_trunk_id=without_cert, sip_call_to=CALLEE, room_name="mtls", participant_identity="no-cert",
                    wait_until_answered=True,
                )  # fmt: skip
                with pytest.raises(api.TwirpError) as failure:
                    await client.sip.create_sip_participant(request)
                assert failure.value.metadata["sip_status_code"] == "503"
                assert without_cert in failure.value.message and "TLS" in failure.value.message
                assert not kamailio.grep_log("admitted INVITE")

                answering = asyncio.create_task(callee.answer(ring_ms=200))
                await client.sip.create_sip_participant(
                    api.CreateSIPParticipantRequest(
                        sip_trunk_id=with_cert, sip_call_to=CALLEE, room_name="mtls", participant_identity="callee",
                        wait_until_answered=True,
                    )
                )  # fmt: skip
                assert kamailio.grep_log("admitted INVITE from client certificate 'bridge'")
                await livekit_api.room.remove_participant(api.RoomParticipantIdentity(room="mtls", identity="callee"))
                (await answering).check()


async def test_listener_requires_client_certificates_when_asked(tmp_path: Path) -> None:
    pki = TestPki(tmp_path / "pki")
    ours = pki.issue("bridge", dns=("bridge.test",), ips=(LOOPBACK,))
    phone = pki.issue("pbx")
    port = free_tcp_port()
    tls = {
        "port": port, "certs": [{"cert_file": str(ours.cert), "key_file": str(ours.key)}],
        "verify_clients": str(pki.ca.cert),
    }  # fmt: skip
    with BridgeProcess(tmp_path / "bridge", extra={"tls": tls}):
        options = sip_request("OPTIONS", port, call_id="mtls-probe")
        served = await s_client(port, options, ca=pki.ca.cert, args=("-cert", str(phone.cert), "-key", str(phone.key)))
        assert served.response.startswith("SIP/2.0 200"), served.output
        refused = await s_client(port, options, ca=pki.ca.cert)
        assert not refused.response, refused.output
