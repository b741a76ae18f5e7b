"""The call inspector's memory and cost over many short calls: sipp places --calls calls (INVITE, 200, ACK, BYE)
against an Endpoint whose every SIP message goes through the inspector's trace book, each call claimed, given a
quality sample and ended as a call flow does. Prints, as the calls go by, the traces held, the book's own count of
bytes, the process's RSS and Python heap, and the tap's cost per message.

The book keeps ``inspector.keep_calls`` ended calls (default 200): after the first few hundred calls its size and
the process's memory should stay flat however many calls follow. Run on purpose (it loads both cores):

    .venv/bin/python bench/bench_inspector.py --calls 10000 --rate 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import socket
import tempfile
import time
import tracemalloc
from pathlib import Path

from sipbridge.config import InspectorSettings
from sipbridge.inspector.book import TraceBook
from sipbridge.inspector.trace import CallSummary
from sipbridge.media.quality import DirectionQuality, QualitySample
from sipbridge.sip import Address, CallFailed, Endpoint, InboundLeg, MediaSession, SipSettings

SCENARIO = Path(__file__).resolve().parents[1] / "tests" / "sipp" / "uac_basic.xml"
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE / 1e6


class TimedBook(TraceBook):
    """The book, timing its tap in CPU time (wall time on a shared machine counts other processes' turns)."""

    tapped = 0
    tap_seconds = 0.0

    def record(self, data: bytes, outgoing: bool, peer: Address) -> None:
        start = time.thread_time()
        super().record(data, outgoing, peer)
        self.tap_seconds += time.thread_time() - start
        self.tapped += 1


def sample() -> QualitySample:
    received = DirectionQuality(250, 3, 1.2, 1.2, 4.5, 4.21, 1, 0, 60.0)
    return QualitySample(5.0, received, None, None)


async def run(calls: int, rate: int, keep_calls: int, limit: int, heap: bool, inspect: bool, drain: float) -> None:
    book = TimedBook(InspectorSettings(keep_calls=keep_calls))
    ended = 0

    async def handler(call: InboundLeg) -> None:
        nonlocal ended
        summary = CallSummary(f"SCL_{call.handle:08d}", "inbound", "ST_benchtrunk", "SDR_benchrule",
                              f"room-{call.handle}", "sip_+15105550100", "+15105550100", "+13105550100", "active",
                              "PCMU")  # fmt: skip
        trace = book.claim(call.call_id, summary) if inspect else None
        with contextlib.suppress(CallFailed):
            await call.answer(MediaSession("127.0.0.1", 32000))
            if trace is not None:
                book.add_quality(trace, sample())
        ended_event = await call.wait_ended()
        summary.ending = f"the phone side ended the call ({ended_event.reason})"
        if trace is not None:
            book.end(trace)
        ended += 1

    endpoint = Endpoint(SipSettings(bind_host="127.0.0.1", port=free_port()))
    await endpoint.start()
    endpoint.take_calls(handler)
    book.local_address = lambda transport: ("127.0.0.1", endpoint.port)
    if inspect:
        endpoint.tap = book.record
    if heap:
        tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    cpu_start = time.process_time()
    print(f"{'calls ended':>11} {'traces held':>11} {'book kB':>8} {'RSS MB':>7} {'heap MB':>8} {'tap µs/msg':>10}")

    def report() -> None:
        gc.collect()
        grown = f"{(tracemalloc.get_traced_memory()[0] - baseline) / 1e6:>8.2f}" if heap else f"{'-':>8}"
        per_message = book.tap_seconds / book.tapped * 1e6 if book.tapped else 0.0
        print(f"{ended:>11} {len(book):>11} {book.size / 1e3:>8.0f} {rss_mb():>7.1f} {grown} {per_message:>10.1f}")

    with tempfile.TemporaryDirectory() as tmp:
        args = [
            f"127.0.0.1:{endpoint.port}", "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(free_port()),
            "-mp", str(free_port()), "-r", str(rate), "-m", str(calls), "-l", str(rate * 2),
            "-timeout", f"{limit}s", "-nostdin",
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            "sipp", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, cwd=tmp
        )
        step = max(1, calls // 10)
        next_report = step
        while proc.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.5)
            if ended >= next_report:
                report()
                next_report += step
        for _ in range(20):  # the last calls' handlers finish
            if ended >= calls:
                break
            await asyncio.sleep(0.1)
        report()
    cpu = time.process_time() - cpu_start
    if drain:
        print(f"(after {drain:.0f} s without calls: the SIP stack's transactions of the last calls have expired)")
        await asyncio.sleep(drain)
        report()
    await endpoint.close()
    per_message = book.tap_seconds / book.tapped * 1e6 if book.tapped else 0.0
    print(f"{ended} calls, {book.tapped} messages through the tap ({per_message:.1f} µs CPU each); "
          f"held at the end: {len(book)} traces, {book.size / 1e3:.0f} kB by the book's count")  # fmt: skip
    parts = "SIP stack, handler" + (", inspector" if inspect else "")
    print(f"process CPU per call ({parts}): {cpu / max(1, ended) * 1e3:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--rate", type=int, default=200, help="calls per second sipp offers")
    parser.add_argument("--keep-calls", type=int, default=200, help="inspector.keep_calls")
    parser.add_argument("--limit", type=int, default=300, help="seconds before sipp gives up")
    parser.add_argument("--heap", action="store_true", help="also trace the Python heap (tracemalloc: slower)")
    parser.add_argument("--without", action="store_true", help="the same calls without the inspector (baseline)")
    parser.add_argument("--drain", type=float, default=40.0, help="seconds to wait after the calls, then report")
    ns = parser.parse_args()
    asyncio.run(run(ns.calls, ns.rate, ns.keep_calls, ns.limit, ns.heap, not ns.without, ns.drain))


if __name__ == "__main__":
    main()
