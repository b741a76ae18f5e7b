"""What hostile input costs a running bridge: log bytes for a junk flood, CPU for a byte-by-byte TCP drip.

1. Junk flood: `--datagrams` (150 000) junk datagrams (random bytes, cut-off requests, requests with a broken
   header) from 50 source addresses at the SIP port; figures: datagrams the bridge counted, log bytes written, and
   whether it still answers OPTIONS.
2. TCP drip: one connection sends a 60 KB message one byte per segment (TCP_NODELAY) at `--drip-rate` bytes per
   second, so the message arrives whole within the bridge's 32 s message deadline; figure: the bridge process's
   CPU share over the drip (from /proc/<pid>/stat), and whether the message was answered.

Bounded in count and time. Run: .venv/bin/python bench/bench_hostile_input.py [--datagrams 150000] [--drip-rate 2500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness.bridge import BridgeProcess
from harness.sip_client import RawSipClient

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SOURCES = 50
DRIP_SIZE = 60_000


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def junk(rng: random.Random, n: int) -> bytes:
    kind = n % 3
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 600))
    if kind == 1:
        return b"INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK" + str(n).encode()
    return (
        f"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKj{n}\r\n"
        f"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: junk{n}\r\nCSeq: one OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def answers_options(bridge: BridgeProcess) -> bool:
    async with RawSipClient(bridge.sip_port) as sip:
        options = sip.request("OPTIONS", f"sip:x@127.0.0.1:{bridge.sip_port}", to_user="x", from_user="probe")
        try:
            return (await sip.final(options, within=10)).status == 200
        except TimeoutError:
            return False


async def junk_flood(bridge: BridgeProcess, datagrams: int) -> None:
    log_before = len(bridge.log_text().encode())
    counted_before = bridge.metrics()["sipbridge_sip_malformed_messages"]
    rng = random.Random(1)
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(SOURCES)]
    start = time.monotonic()
    for i, sock in enumerate(sockets):
        sock.bind((f"127.0.1.{1 + i}", 0))
    for n in range(datagrams):
        sockets[n % SOURCES].sendto(junk(rng, n), ("127.0.0.1", bridge.sip_port))
        if n % 1000 == 999:
            await asyncio.sleep(0.05)
    for sock in sockets:
        sock.close()
    sent_in = time.monotonic() - start
    alive = await answers_options(bridge)
    await asyncio.sleep(11)  # the last 10 s window's summary
    counted = bridge.metrics()["sipbridge_sip_malformed_messages"] - counted_before
    grown = len(bridge.log_text().encode()) - log_before
    print(f"junk flood: {datagrams} datagrams in {sent_in:.1f} s from {SOURCES} sources")
    print(f"  counted by the bridge: {counted:.0f}; log written: {grown} bytes; answers OPTIONS after: {alive}")


async def tcp_drip(bridge: BridgeProcess, rate: float) -> None:
    body = b"x" * (DRIP_SIZE - 300)
    message = (
        f"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKdrip\r\n"
        f"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: drip\r\nCSeq: 1 OPTIONS\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    reader, writer = await asyncio.open_connection("127.0.0.1", bridge.sip_port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pid = bridge.process.pid
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    interval = 1.0 / rate
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    for i in range(len(message)):
        writer.write(message[i : i + 1])
        if i % 50 == 49:  # sleeping per byte would cost the sender more than the bridge: pace in steps
            next_at += 50 * interval
            await writer.drain()
            await asyncio.sleep(max(0.0, next_at - loop.time()))
    status = await asyncio.wait_for(reader.readline(), 10)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    writer.close()
    share = (cpu1 - cpu0) / (t1 - t0) * 100
    print(f"TCP drip: {len(message)} bytes one per segment in {t1 - t0:.1f} s ({len(message) / (t1 - t0):.0f} B/s)")
    print(f"  bridge CPU over the drip: {share:.1f} % of a core; answered: {status.decode().strip()!r}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datagrams", type=int, default=150_000)
    parser.add_argument("--drip-rate", type=float, default=2500.0, help="bytes per second of the TCP drip")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as workdir,
        BridgeProcess(Path(workdir) / "bridge", extra={"logging": {"level": "info"}}) as bridge,
    ):
        await junk_flood(bridge, args.datagrams)
        await tcp_drip(bridge, args.drip_rate)


if __name__ == "__main__":
    asyncio.run(main())
