"""A real two-proxy path: sipp and our Endpoint talk through two record-routing Kamailio proxies."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sipp_harness import EndpointFactory, Sipp, free_port, wait_bound

from sipbridge.sip import InboundLeg
from sipbridge.sip.offer_answer import MediaSession
from sipbridge.sip.transaction import Address

CONFIG = Path(__file__).with_name("kamailio_proxy.cfg")


class ProxyPath:
    """Two Kamailio processes: first (``entry``) → second → ``target`` port."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.entry = free_port()
        self.second = free_port()
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, target: int) -> None:
        for name, listen, nxt in (("k1", self.entry, self.second), ("k2", self.second, target)):
            config = self.tmp_path / f"{name}.cfg"
            text = CONFIG.read_text().replace("LISTEN_PORT", str(listen)).replace("NEXT_PORT", str(nxt))
            config.write_text(text)
            proc = await asyncio.create_subprocess_exec(
                "kamailio", "-f", str(config), "-DD", "-E", "-m", "16", "-M", "4", "-w", str(self.tmp_path),
                "-P", str(self.tmp_path / f"{name}.pid"),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            self.procs.append(proc)
        for port in (self.entry, self.second):
            await wait_bound(port, tcp=True)

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()


@pytest.fixture
async def proxies(tmp_path: Path) -> AsyncIterator[ProxyPath]:
    if shutil.which("kamailio") is None:
        pytest.skip("kamailio not installed")
    path = ProxyPath(tmp_path)
    yield path
    await path.stop()


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_inbound_call_through_two_proxies(
    sipp: Sipp, endpoint: EndpointFactory, proxies: ProxyPath, transport: str
) -> None:
    routes: list[tuple[str, int]] = []

    async def handler(call: InboundLeg) -> None:
        routes.append((call.source.transport, len(call.request.headers.get_all("Record-Route"))))
        await call.answer(MediaSession("127.0.0.1", 31000))
        await call.bye()

    ep = await endpoint(handler)
    await proxies.start(target=ep.port)
    sipp_transport = "u1" if transport == "UDP" else "t1"
    result = await sipp.run(
        "uac_proxied.xml", proxies.entry, transport=sipp_transport, extra=("-set", "target", str(ep.port))
    )
    result.check()
    assert routes == [(transport, 2)]


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_outbound_call_through_two_proxies(
    sipp: Sipp, endpoint: EndpointFactory, proxies: ProxyPath, transport: str
) -> None:
    ep = await endpoint()
    await proxies.start(target=sipp.port)
    server = await sipp.start("uas_proxied.xml", transport="u1" if transport == "UDP" else "t1")
    call = ep.place_call(
        f"sip:service@127.0.0.1:{sipp.port}",
        MediaSession("127.0.0.1", 31002),
        from_uri="sip:bridge@127.0.0.1",
        destination=Address(transport, "127.0.0.1", proxies.entry),
    )
    await asyncio.wait_for(call.wait_answered(), 10)
    await asyncio.wait_for(call.bye(), 10)
    (await server).check()
