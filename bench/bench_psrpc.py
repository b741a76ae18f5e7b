"""psrpc's timings on a real Redis: the selection window, the deadline, concurrency, and a call's round trip.

The integration tests (tests/integration/psrpc) check what psrpc guarantees — which error, who ran what, that
handlers overlap — and not how long it took, which depends on the machine's load. The durations are here:
* with every server paused, the time until the caller gets UNAVAILABLE (psrpc's 1 s selection window);
* with a handler that never answers, the time until the caller gets DEADLINE_EXCEEDED (its 0.5 s timeout);
* twenty 0.5 s handlers called at once: the wall time (0.5 s if they overlap, 10 s one after another);
* an Echo call's round trip, p50 and p99 over `--calls` calls one after another.
Each figure is printed with the machine's load average, against which it should be read.

Run: .venv/bin/python bench/bench_psrpc.py [--calls 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench_util import percentile
from harness.processes import RedisServer

from sipbridge.psrpc import Incoming, PsrpcError, RedisBus, RPCClient, RPCServer
from sipbridge.psrpc.wire import ClaimResponse as Ping

SERVICE = "PsrpcBench"
NewBus = Callable[[], Awaitable[RedisBus]]


@asynccontextmanager
async def buses(redis: RedisServer) -> AsyncIterator[NewBus]:
    """Makes buses with their own Redis connections, as separate nodes have; all closed at the end."""
    opened: list[tuple[RedisBus, aioredis.Redis]] = []

    async def make() -> RedisBus:
        client = aioredis.Redis(host=redis.host, port=redis.port)
        opened.append((RedisBus(client), client))
        return opened[-1][0]

    try:
        yield make
    finally:
        for bus, client in opened:
            await bus.close()
            await client.aclose()


async def echo(request: Ping, incoming: Incoming) -> Ping:
    return request


async def nap(request: Ping, incoming: Incoming) -> Ping:
    await asyncio.sleep(0.5)
    return request


async def never(request: Ping, incoming: Incoming) -> Ping:
    await asyncio.Event().wait()
    return request


async def seconds_until_failure(client: RPCClient, method: str, timeout: float = 3.0) -> tuple[float, str]:  # noqa: ASYNC109 (the request's own timeout, measured)
    started = time.monotonic()
    try:
        await client.request(method, Ping(request_id="r"), Ping, timeout=timeout)
    except PsrpcError as error:
        return time.monotonic() - started, error.code
    raise AssertionError(f"{method} did not fail")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="Echo calls for the round trip figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-psrpc-") as tmp, RedisServer(Path(tmp) / "redis") as redis:
        async with buses(redis) as new_bus:
            server = RPCServer(await new_bus(), SERVICE)
            paused = await server.register("Paused", Ping, Ping, echo)
            await paused.pause()
            await server.register("Echo", Ping, Ping, echo)
            await server.register("Nap", Ping, Ping, nap)
            await server.register("Never", Ping, Ping, never)
            client = RPCClient(await new_bus(), SERVICE)

            window, code = await seconds_until_failure(client, "Paused")
            print(f"every server paused: {code} after {window:.3f} s (selection window 1 s)")
            deadline, code = await seconds_until_failure(client, "Never", timeout=0.5)
            print(f"handler never answers: {code} after {deadline:.3f} s (timeout 0.5 s)")

            started = time.monotonic()
            await asyncio.gather(*(client.request("Nap", Ping(request_id=f"n{i}"), Ping) for i in range(20)))
            print(f"20 handlers of 0.5 s at once: {time.monotonic() - started:.3f} s (one after another: 10 s)")

            round_trips = []
            for i in range(args.calls):
                started = time.monotonic()
                await client.request("Echo", Ping(request_id=f"e{i}"), Ping)
                round_trips.append(1000 * (time.monotonic() - started))
            p50, p99 = percentile(round_trips, 50), percentile(round_trips, 99)
            print(f"Echo round trip over {args.calls} calls: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
