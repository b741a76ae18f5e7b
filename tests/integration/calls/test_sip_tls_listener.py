"""config.yaml's `tls` block (the Go service's) gives the bridge a SIP over TLS listener."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import pytest
from harness.bridge import BridgeProcess
from harness.ports import LOOPBACK, free_tcp_port

pytestmark = pytest.mark.integration


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_options_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls_port = free_tcp_port()
    tls = {"port": tls_port, "certs": [{"cert_file": str(cert), "key_file": str(key)}]}
    with BridgeProcess(tmp_path / "bridge", extra={"tls": tls}) as bridge:
        assert f"TLS on {tls_port}" in bridge.log_text()
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        reader, writer = await asyncio.open_connection(LOOPBACK, tls_port, ssl=context)
        request = (
            f"OPTIONS sip:{LOOPBACK}:{tls_port};transport=tls SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS {LOOPBACK}:5999;branch=z9hG4bK-tls-1\r\n"
            "From: <sip:probe@example.com>;tag=1\r\nTo: <sip:bridge@example.com>\r\n"
            "Call-ID: tls-probe-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        assert status.startswith(b"SIP/2.0 200"), status
