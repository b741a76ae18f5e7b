"""openssl on both sides of SIP over TLS: ``s_client`` sends the bridge's TLS listener one request and reports what
was negotiated and answered; ``TlsCarrier`` (``s_server``) takes the bridge's outgoing TLS connection and reports
what the bridge offered."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from .ports import LOOPBACK, free_tcp_port


@dataclass
class TlsProbe:
    """What ``openssl s_client`` printed: the session (protocol, cipher, ALPN) and the SIP response, if any."""

    output: str

    def _field(self, pattern: str) -> str | None:
        found = re.search(pattern, self.output, re.M)
        return found.group(1) if found else None

    @property
    def protocol(self) -> str | None:
        """``TLSv1.2``, ``TLSv1.3``; None when no handshake completed."""
        return self._field(r"^New, (TLSv[\d.]+), Cipher is")

    @property
    def cipher(self) -> str | None:
        return self._field(r"^New, TLSv[\d.]+, Cipher is (\S+)")

    @property
    def alpn(self) -> str | None:
        """The protocol the server selected; None for "No ALPN negotiated"."""
        return self._field(r"^ALPN protocol: (\S+)")

    @property
    def response(self) -> str:
        """The final SIP response's status line and headers ("" when none came)."""
        found = list(re.finditer(r"SIP/2\.0 [2-6]\d\d ", self.output))
        return self.output[found[-1].start() :] if found else ""


async def s_client(
    port: int, request: str, *, ca: Path, args: tuple[str, ...] = (), key_log: Path | None = None, within: float = 30
) -> TlsProbe:
    """Connect to ``port`` on loopback, send ``request`` (SIP text) and read until a final response's headers, or
    until s_client reports an error or exits (a refused handshake or connection). ``args``: more s_client options
    (``-tls1_2``, ``-alpn sip``)."""
    argv = ["openssl", "s_client", "-connect", f"{LOOPBACK}:{port}", "-CAfile", str(ca), "-nocommands", *args]
    if key_log is not None:
        argv += ["-keylogfile", str(key_log)]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(request.encode())
    await proc.stdin.drain()
    lines: list[str] = []
    final = False
    try:
        async with asyncio.timeout(within):
            while line := (await proc.stdout.readline()).decode(errors="replace"):
                lines.append(line)
                if re.search(r"SIP/2\.0 [2-6]\d\d ", line):  # s_client may print it after a hex dump
                    final = True
                elif (final and not line.strip()) or ":error:" in line:  # answered, or the connection refused
                    break
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    return TlsProbe("".join(lines))


def sip_request(method: str, port: int, *, call_id: str, body: str = "") -> str:
    """A request to the bridge over TLS, as s_client sends it (CRLF line ends)."""
    lines = [
        f"{method} sip:+15105550100@{LOOPBACK}:{port};transport=tls SIP/2.0",
        f"Via: SIP/2.0/TLS {LOOPBACK}:5999;branch=z9hG4bK-{call_id}",
        f"From: <sip:+13105550100@{LOOPBACK}>;tag=probe",
        f"To: <sip:+15105550100@{LOOPBACK}>",
        f"Call-ID: {call_id}",
        f"CSeq: 1 {method}",
        f"Contact: <sip:probe@{LOOPBACK}:5999;transport=tls>",
        "Max-Forwards: 70",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


class TlsCarrier:
    """``openssl s_server`` on a free loopback port standing for a carrier's TLS edge: it accepts one connection,
    prints the client's ALPN offer, the shared cipher suites and what it received, and writes its key log."""

    def __init__(self, workdir: Path, cert: Path, key: Path, *, args: tuple[str, ...] = ()) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_tcp_port()
        self.key_log = workdir / "carrier-keys.log"
        self.log_path = workdir / "s_server.log"
        self._argv = [
            "openssl", "s_server", "-accept", f"{LOOPBACK}:{self.port}", "-cert", str(cert), "-key", str(key),
            "-naccept", "1", "-keylogfile", str(self.key_log), *args,
        ]  # fmt: skip
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        log = self.log_path.open("wb")
        # Its stdin stays open (a pipe we never close early): s_server quits at end of input.
        self._proc = subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_for(self, text: str, within: float = 30.0) -> str:
        """The output once it contains ``text`` (it is written as the connection goes on)."""
        deadline = time.monotonic() + within
        while text not in (out := self.output()):
            if time.monotonic() > deadline:
                raise AssertionError(f"s_server never printed {text!r}:\n{out[-3000:]}")
            await asyncio.sleep(0.1)
        return out

    def session_protocol(self) -> str | None:
        """The negotiated TLS version, from the session s_server printed (``openssl sess_id`` reads it)."""
        found = re.search(r"-----BEGIN SSL SESSION PARAMETERS-----.*?-----END SSL SESSION PARAMETERS-----\n",
                          self.output(), re.S)  # fmt: skip
        if found is None:
            return None
        text = subprocess.run(
            ["openssl", "sess_id", "-noout", "-text"], input=found.group(0).encode(), capture_output=True, check=True
        ).stdout.decode()
        protocol = re.search(r"Protocol\s*:\s*(\S+)", text)
        return protocol.group(1) if protocol else None
