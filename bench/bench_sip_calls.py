"""Call and transaction throughput: sipp places calls at a fixed rate against an auto-answering Endpoint.

Each call is two transactions (INVITE, BYE) plus an ACK. Bounded by ``--calls`` and ``--limit`` seconds, so it is
safe on a shared machine. Run: .venv/bin/python bench/bench_sip_calls.py --rate 100 --calls 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import socket
import tempfile
import time
from pathlib import Path

from sipbridge.sip import CallFailed, Endpoint, InboundLeg
from sipbridge.sip.offer_answer import MediaSession
from sipbridge.sip.settings import SipSettings

SCENARIO = Path(__file__).resolve().parents[1] / "tests" / "sipp" / "uac_basic.xml"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run(rate: int, calls: int, limit: int, transport: str, overload_lag: float = 0.0) -> None:
    answered = 0

    async def handler(call: InboundLeg) -> None:
        nonlocal answered
        with contextlib.suppress(CallFailed):
            await call.answer(MediaSession("127.0.0.1", 32000))
            answered += 1
        await call.wait_ended()

    endpoint = Endpoint(SipSettings(bind_host="127.0.0.1", port=free_port(), overload_lag=overload_lag))
    await endpoint.start()
    endpoint.take_calls(handler)
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.csv"
        args = [
            f"127.0.0.1:{endpoint.port}", "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(free_port()),
            "-mp", str(free_port()), "-t", transport, "-r", str(rate), "-m", str(calls), "-l", str(rate * 2),
            "-timeout", f"{limit}s", "-nostdin", "-trace_stat", "-stf", str(stats), "-fd", "1",
        ]  # fmt: skip
        start = time.perf_counter()
        cpu_start = time.process_time()
        proc = await asyncio.create_subprocess_exec(
            "sipp", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, cwd=tmp
        )
        await asyncio.wait_for(proc.wait(), limit + 30)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        text = stats.read_text() if stats.exists() else ""
    await endpoint.close()
    success = _last_csv_value(text, "SuccessfulCall(C)")
    failed = _last_csv_value(text, "FailedCall(C)")
    retrans = _last_csv_value(text, "Retransmissions(C)")
    print(f"transport {transport}  offered {rate} calls/s  calls {calls}  wall {elapsed:.1f} s")
    print(f"  sipp: successful {success}  failed {failed}  retransmissions {retrans}  (we answered {answered})")
    print(f"  throughput {success / elapsed:.0f} calls/s = {2 * success / elapsed:.0f} transactions/s")
    if success:
        per_call = cpu / success
        print(
            f"  our CPU {per_call * 1e3:.2f} ms per call (INVITE+ACK+BYE), i.e. about {1 / per_call:.0f} calls/s"
            f" = {2 / per_call:.0f} transactions/s per fully used core"
        )


def _last_csv_value(text: str, column: str) -> int:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return 0
    header = lines[0].split(";")
    values = lines[-1].split(";")
    if column not in header:
        return 0
    value = values[header.index(column)]
    return int(value) if re.fullmatch(r"\d+", value) else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=100, help="calls per second offered by sipp")
    parser.add_argument("--calls", type=int, default=1000, help="total calls (bounds the run)")
    parser.add_argument("--limit", type=int, default=60, help="seconds before sipp gives up")
    parser.add_argument("--transport", default="u1", help="sipp -t value: u1 (UDP) or t1 (TCP)")
    parser.add_argument("--overload-lag", type=float, default=0.0, help="SipSettings.overload_lag (0: off)")
    ns = parser.parse_args()
    asyncio.run(run(ns.rate, ns.calls, ns.limit, ns.transport, ns.overload_lag))


if __name__ == "__main__":
    main()
