"""The Go service's TLS keys on the wire, against openssl on the other end: ``tls.min_version`` / ``max_version``,
``cipher_suites`` (Go's names), ``alpn`` and ``key_log`` on our listener (``s_client``) and on the TLS connections we
open (``s_server`` as a carrier), and ``sip_hostname`` / ``add_record_route`` in what TLS peers get from us."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness.bridge import BridgeProcess, api_client
from harness.certs import Cert, TestPki
from harness.ports import LOOPBACK, free_tcp_port
from harness.processes import LiveKitServer
from harness.tls_probe import TlsCarrier, s_client, sip_request
from livekit import api

pytestmark = pytest.mark.integration

SUITE = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"  # the test PKI's keys are EC
OPENSSL_SUITE = "ECDHE-ECDSA-AES256-GCM-SHA384"
HOSTNAME = "${IP}.sip.test"
NODE_NAME = "127-0-0-1.sip.test"  # HOSTNAME on a loopback node


def tls_block(cert: Cert, port: int, **keys: Any) -> dict[str, Any]:
    return {"port": port, "certs": [{"cert_file": str(cert.cert), "key_file": str(cert.key)}], **keys}


def key_log_lines(path: Path) -> set[str]:
    return {line for line in path.read_text().splitlines() if line and not line.startswith("#")}


async def test_listener_bounds_versions_and_suites_selects_sip_alpn_and_logs_keys(tmp_path: Path) -> None:
    pki = TestPki(tmp_path / "pki")
    ours = pki.issue("bridge", ips=(LOOPBACK,))
    port, key_log = free_tcp_port(), tmp_path / "bridge-keys.log"
    tls = tls_block(ours, port, min_version="tls1.2", max_version="tls1.2", cipher_suites=[SUITE], key_log=str(key_log))
    extra = {"tls": tls, "sip_hostname": HOSTNAME, "add_record_route": True}
    with BridgeProcess(tmp_path / "bridge", extra=extra):
        client_keys = tmp_path / "client-keys.log"
        ok = await s_client(port, sip_request("OPTIONS", port, call_id="o1"), ca=pki.ca.cert,
                            args=("-alpn", "sip,h2"), key_log=client_keys)  # fmt: skip
        assert (ok.protocol, ok.cipher, ok.alpn) == ("TLSv1.2", OPENSSL_SUITE, "sip"), ok.output
        assert ok.response.startswith("SIP/2.0 200"), ok.output
        # The bridge wrote this session's secret, as the client knows it, to its key log.
        assert key_log_lines(client_keys) and key_log_lines(client_keys) <= key_log_lines(key_log)

        above = await s_client(port, sip_request("OPTIONS", port, call_id="o2"), ca=pki.ca.cert, args=("-tls1_3",))
        assert above.protocol is None and not above.response, above.output
        other_suite = await s_client(
            port, sip_request("OPTIONS", port, call_id="o3"), ca=pki.ca.cert,
            args=("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"),
        )  # fmt: skip
        assert other_suite.protocol is None and not other_suite.response, other_suite.output
        # A client offering only other protocols is served without ALPN (Go would refuse it: docs/configuration.md).
        other_alpn = await s_client(port, sip_request("OPTIONS", port, call_id="o4"), ca=pki.ca.cert,
                                    args=("-alpn", "h2"))  # fmt: skip
        assert other_alpn.alpn is None and other_alpn.response.startswith("SIP/2.0 200"), other_alpn.output

        # An INVITE no trunk admits is refused; the answer names this node in Record-Route, by its TLS host name
        # and the announced tls.port.
        refused = await s_client(port, sip_request("INVITE", port, call_id="i1"), ca=pki.ca.cert)
        assert refused.response.startswith("SIP/2.0 4"), refused.output
        assert f"Record-Route: <sip:{NODE_NAME}:{port};transport=tls;lr>" in refused.response, refused.response


async def test_listener_tls13_only_without_alpn(tmp_path: Path) -> None:
    pki = TestPki(tmp_path / "pki")
    ours = pki.issue("bridge", ips=(LOOPBACK,))
    port = free_tcp_port()
    with BridgeProcess(tmp_path / "bridge", extra={"tls": tls_block(ours, port, min_version="tls1.3", alpn=[])}):
        below = await s_client(port, sip_request("OPTIONS", port, call_id="o1"), ca=pki.ca.cert, args=("-tls1_2",))
        assert below.protocol is None and not below.response, below.output
        ok = await s_client(port, sip_request("OPTIONS", port, call_id="o2"), ca=pki.ca.cert, args=("-alpn", "sip"))
        assert (ok.protocol, ok.alpn) == ("TLSv1.3", None), ok.output
        assert ok.response.startswith("SIP/2.0 200"), ok.output


async def test_outgoing_tls_offers_sip_alpn_within_the_bounds_and_names_us_by_host_name(
    tmp_path: Path, livekit_server: LiveKitServer
) -> None:
    pki = TestPki(tmp_path / "pki")
    ours, carrier_cert = pki.issue("bridge", ips=(LOOPBACK,)), pki.issue("carrier", ips=(LOOPBACK,))
    key_log, tls_port = tmp_path / "bridge-keys.log", free_tcp_port()
    tls = tls_block(
        ours, tls_port, max_version="tls1.2", cipher_suites=[SUITE], key_log=str(key_log), ca_file=str(pki.ca.cert)
    )
    extra = {"tls": tls, "sip_hostname": HOSTNAME}
    with (
        TlsCarrier(tmp_path / "carrier", carrier_cert.cert, carrier_cert.key, args=("-alpn", "sip")) as carrier,
        BridgeProcess(tmp_path / "bridge", livekit=livekit_server, extra=extra) as bridge,
    ):
        async with api_client(bridge) as client:
            trunk = api.SIPOutboundTrunkInfo(
                name="tls carrier", address=f"{LOOPBACK}:{carrier.port}", numbers=["+15105550100"],
                transport=api.SIPTransport.SIP_TRANSPORT_TLS,
            )  # fmt: skip
            created = await client.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=trunk))
            await client.sip.create_sip_participant(
                api.CreateSIPParticipantRequest(
                    sip_trunk_id=created.sip_trunk_id, sip_call_to="+12135550100", room_name="tls-out",
                    participant_identity="callee",
                )
            )  # fmt: skip
            seen = await carrier.wait_for("Content-Length")  # the INVITE, through the handshake
    assert "ALPN protocols advertised by the client: sip\n" in seen, seen
    assert f"Shared ciphers:{OPENSSL_SUITE}\n" in seen, seen  # the only TLS 1.2 suite we offered
    assert carrier.session_protocol() == "TLSv1.2"
    assert f"Contact: <sip:sipbridge@{NODE_NAME}:{tls_port};transport=tls>" in seen, seen
    assert key_log_lines(carrier.key_log) and key_log_lines(carrier.key_log) <= key_log_lines(key_log)
