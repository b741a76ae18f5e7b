"""Interop with baresip, a second independent SIP implementation: SDES-SRTP offer/answer both ways, and TLS."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sipp_harness import free_port, wait_bound

from sipbridge.sip import Endpoint, InboundLeg
from sipbridge.sip.offer_answer import Encryption, MediaParams, MediaSession
from sipbridge.sip.settings import SipSettings

CONFIG = Path(__file__).with_name("baresip_config.txt")


class Baresip:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.tls_port = free_port()
        self.output = ""

    def configure(self, mediaenc: str, *, cafile: str | None = None) -> None:
        rtp = free_port()
        tls = f"sip_cafile\t\t{cafile}" if cafile else ""
        text = (
            CONFIG.read_text()
            .replace("SIP_PORT", str(self.port))
            .replace("WORKDIR", str(self.workdir))
            .replace("RTP_PORTS", f"{rtp}-{rtp + 1}")
            .replace("SIP_TLS_LINES", tls)
        )
        (self.workdir / "config").write_text(text)
        (self.workdir / "accounts").write_text(
            f"<sip:baresip@127.0.0.1>;regint=0;answermode=auto;mediaenc={mediaenc}\n"
        )
        tone = str(self.workdir / "tone.wav")
        subprocess.run(
            ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", tone, "synth", "3", "sine", "440"], check=True
        )

    async def run(self, *commands: str, seconds: int = 4) -> asyncio.Task[str]:
        args = ["baresip", "-f", str(self.workdir), "-t", str(seconds)]
        for command in commands:
            args += ["-e", command]
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=self.workdir
        )

        async def finish() -> str:
            out, _ = await asyncio.wait_for(proc.communicate(), seconds + 15)
            self.output = out.decode(errors="replace")
            return self.output

        task = asyncio.ensure_future(finish())
        await wait_bound(self.port)
        return task


@pytest.fixture
async def baresip(tmp_path: Path) -> AsyncIterator[Baresip]:
    if shutil.which("baresip") is None or shutil.which("sox") is None:
        pytest.skip("baresip or sox not installed")
    yield Baresip(tmp_path)


def offered_key(output: str) -> str | None:
    match = re.search(r"SRTP is Enabled \(cryptosuite=(\S+)\)", output)
    return match.group(1) if match else None


async def test_baresip_calls_us_with_sdes_srtp(baresip: Baresip) -> None:
    negotiated: list[MediaParams] = []

    async def handler(call: InboundLeg) -> None:
        negotiated.append(await call.answer(MediaSession("127.0.0.1", free_port(), encryption=Encryption.ALLOW)))
        await asyncio.sleep(0.5)
        await call.bye()

    endpoint = Endpoint(SipSettings(bind_host="127.0.0.1", port=free_port()))
    await endpoint.start()
    endpoint.take_calls(handler)
    try:
        baresip.configure("srtp")
        output = await (await baresip.run(f"/dial sip:bob@127.0.0.1:{endpoint.port}"))
    finally:
        await endpoint.close()
    assert negotiated and negotiated[0].srtp is not None
    assert offered_key(output) == negotiated[0].srtp.suite == "AES_CM_128_HMAC_SHA1_80"
    assert "session closed" in output  # our BYE ended it on baresip's side


async def test_we_call_baresip_with_mandatory_srtp(baresip: Baresip) -> None:
    endpoint = Endpoint(SipSettings(bind_host="127.0.0.1", port=free_port()))
    await endpoint.start()
    try:
        baresip.configure("srtp-mand")  # expects RTP/SAVP, which Encryption.REQUIRE offers
        finished = await baresip.run()
        call = endpoint.place_call(
            f"sip:baresip@127.0.0.1:{baresip.port}",
            MediaSession("127.0.0.1", free_port(), encryption=Encryption.REQUIRE),
            from_uri="sip:bridge@127.0.0.1",
        )
        media = await asyncio.wait_for(call.wait_answered(), 5)
        assert media.srtp is not None and media.srtp.suite == "AES_CM_128_HMAC_SHA1_80"
        assert (await asyncio.wait_for(call.bye(), 5)).reason == "bye"
        output = await finished
    finally:
        await endpoint.close()
    assert "Call established" in output and offered_key(output) == "AES_CM_128_HMAC_SHA1_80"


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-days", "1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_baresip_calls_us_over_tls(baresip: Baresip, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    sources: list[str] = []

    async def handler(call: InboundLeg) -> None:
        sources.append(call.source.transport)
        await call.answer(MediaSession("127.0.0.1", free_port()))
        await asyncio.sleep(0.5)
        await call.bye()

    settings = SipSettings(
        bind_host="127.0.0.1", port=free_port(), tls_port=free_port(), tls_cert_file=str(cert), tls_key_file=str(key)
    )
    endpoint = Endpoint(settings)
    await endpoint.start()
    endpoint.take_calls(handler)
    try:
        baresip.configure("srtp", cafile=str(cert))
        target = f"sip:bob@127.0.0.1:{endpoint.settings.tls_port};transport=tls"
        output = await (await baresip.run(f"/dial {target}"))
    finally:
        await endpoint.close()
    assert sources == ["TLS"], output[-2000:]
    assert "session closed" in output
