"""Configuration at carrier scale: 10 000 inbound trunks and 10 000 dispatch rules through the SIP API.

For each store — sipbridge's embedded store (SQLite), sipbridge on Redis, and beside them livekit-server's own
SIP API on the same Redis (CRUD only: it decides no INVITEs) — in one run:

* create `--trunks` inbound trunks (one number each, every tenth with an address filter too) and as many dispatch
  rules (one per trunk), one request after another: p50/p99 per create;
* a few trunks of 2 000 numbers and 2 000 allowed numbers: time per create;
* update and delete 500 records each: p50/p99;
* list every trunk in pages of 100: the time per page, p50/p99;
* the INVITE decision (sipbridge only), from a baseline store (2 trunks, 2 rules) and from the full one: CPU per
  decision in the decision function itself (admitted, refused, digest-challenged; p50/p99 over 2 000 each), and
  at the wire (INVITEs to the running bridge: latency to the final answer, p50/p99, and the bridge's CPU per
  INVITE from /proc) for refused and challenged INVITEs;
* the bridge's RSS with the store loaded (after a restart) against its RSS with the baseline, per record.

Bounded: every process is stopped at the end. Run on purpose (a few minutes):
    .venv/bin/python bench/bench_config_scale.py [--trunks 10000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_util import cpu_seconds, rss_bytes
from harness.bridge import BridgeProcess
from harness.processes import LiveKitServer, RedisServer
from harness.sip_client import RawSipClient
from harness.sipapi import clear_sip_tables
from livekit import api

from dispatch.call import InviteFacts
from dispatch.decide import decide
from sipbridge.config import RedisConfig
from sipbridge.store.redis_backend import RedisBackend
from sipbridge.store.sip_store import SIPStore
from sipbridge.store.sqlite_backend import SqliteBackend

AUTH_NUMBER = "+15550000001"
BIG_TRUNKS = 3
BIG_SIZE = 2000
CHANGES = 500
WIRE_INVITES = 300
DECISIONS = 2000


def number(i: int) -> str:
    return f"+1510{i:07d}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(pct(values, 0.5), 2), "p99": round(pct(values, 0.99), 2), "n": len(values)}


async def timed(action: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = await action()
    return (time.perf_counter() - start) * 1000, result


def trunk(i: int) -> api.SIPInboundTrunkInfo:
    addresses = [f"10.{i % 250}.{i // 250 % 250}.0/24"] if i % 10 == 0 else []
    return api.SIPInboundTrunkInfo(name=f"t{i}", numbers=[number(i)], allowed_addresses=addresses)


def rule(trunk_id: str, i: int) -> api.SIPDispatchRuleInfo:
    direct = api.SIPDispatchRuleDirect(room_name=f"room-{i}")
    return api.SIPDispatchRuleInfo(rule=api.SIPDispatchRule(dispatch_rule_direct=direct), trunk_ids=[trunk_id])


async def crud(client: api.LiveKitAPI, count: int) -> dict[str, Any]:
    """Create, change, list and delete through one SIP API; figures in ms."""
    sip = client.sip
    trunk_ms, rule_ms, trunk_ids = [], [], []
    auth = api.SIPInboundTrunkInfo(numbers=[AUTH_NUMBER], auth_username="u", auth_password="p")
    auth_id = (await sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=auth))).sip_trunk_id
    await sip.create_dispatch_rule(api.CreateSIPDispatchRuleRequest(dispatch_rule=rule(auth_id, -1)))
    for i in range(count):
        ms, created = await timed(
            lambda i=i: sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=trunk(i)))
        )
        trunk_ms.append(ms)
        trunk_ids.append(created.sip_trunk_id)
    rule_ids = []
    for i, trunk_id in enumerate(trunk_ids):
        request = api.CreateSIPDispatchRuleRequest(dispatch_rule=rule(trunk_id, i))
        ms, created = await timed(lambda r=request: sip.create_dispatch_rule(r))
        rule_ms.append(ms)
        rule_ids.append(created.sip_dispatch_rule_id)
    big_ms = []
    for b in range(BIG_TRUNKS):
        big = api.SIPInboundTrunkInfo(
            numbers=[f"+1666{b}{i:06d}" for i in range(BIG_SIZE)],
            allowed_numbers=[f"+1777{b}{i:06d}" for i in range(BIG_SIZE)],
        )
        ms, _ = await timed(lambda big=big: sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=big)))
        big_ms.append(ms)
    update_ms = []
    for trunk_id in trunk_ids[:CHANGES]:
        ms, _ = await timed(lambda t=trunk_id: sip.update_inbound_trunk_fields(t, name="renamed"))
        update_ms.append(ms)
    page_ms, after, listed = [], "", 0
    while True:
        request = api.ListSIPInboundTrunkRequest(page=api.Pagination(after_id=after, limit=100))
        ms, page = await timed(lambda r=request: sip.list_inbound_trunk(r))
        page_ms.append(ms)
        if not page.items:
            break
        listed += len(page.items)
        after = page.items[-1].sip_trunk_id
    delete_ms = []
    for rule_id in rule_ids[-CHANGES:]:
        ms, _ = await timed(
            lambda r=rule_id: sip.delete_dispatch_rule(api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=r))
        )
        delete_ms.append(ms)
    for i in range(max(0, count - CHANGES), count):  # the rules deleted above come back
        await sip.create_dispatch_rule(api.CreateSIPDispatchRuleRequest(dispatch_rule=rule(trunk_ids[i], i)))
    return {
        "create trunk ms": summary(trunk_ms),
        "create rule ms": summary(rule_ms),
        "create 2000-number trunk ms": summary(big_ms),
        "update trunk ms": summary(update_ms),
        "delete rule ms": summary(delete_ms),
        "list page of 100 ms": summary(page_ms),
        "list: trunks in pages": f"{listed} in {len(page_ms) - 1}",
    }


def decision_cpu(store: SIPStore, count: int) -> dict[str, dict[str, float]]:
    """CPU µs per `decide` over the store's indexes, for each outcome."""
    calls = {
        "admitted": lambda i: InviteFacts(number(i % count), "+1999", "192.0.2.1"),
        "refused": lambda i: InviteFacts(f"+1888{i:07d}", "+1999", "192.0.2.1"),
        "challenged": lambda i: InviteFacts(AUTH_NUMBER, "+1999", "192.0.2.1"),
    }
    out = {}
    for outcome, make in calls.items():
        samples = []
        for i in range(DECISIONS):
            call = make(i)
            start = time.process_time_ns()
            decide(store.inbound, store.rules, call, new_suffix=lambda: "x")
            samples.append((time.process_time_ns() - start) / 1000)
        out[f"decision {outcome} µs"] = summary(samples)
    return out


async def wire_invites(bridge: BridgeProcess) -> dict[str, Any]:
    """Refused and challenged INVITEs at the running bridge: latency to the final answer, CPU per INVITE."""
    out: dict[str, Any] = {}
    async with RawSipClient(bridge.sip_port) as sip:
        for outcome, to in (("refused", "+18880000000"), ("challenged", AUTH_NUMBER)):
            latencies = []
            cpu0 = cpu_seconds(bridge.process.pid)
            for _ in range(WIRE_INVITES):
                start = time.perf_counter()
                invite = sip.invite(to, "+13105550100")
                final = await sip.final(invite)
                latencies.append((time.perf_counter() - start) * 1000)
                sip.ack(invite, final)
            cpu = cpu_seconds(bridge.process.pid) - cpu0
            out[f"INVITE {outcome} ({final.status}) ms"] = summary(latencies)
            out[f"INVITE {outcome} bridge CPU ms each"] = round(cpu / WIRE_INVITES * 1000, 3)
    return out


async def seed(client: api.LiveKitAPI) -> None:
    """The smallest store that admits, refuses and challenges: the baseline decisions are compared with."""
    sip = client.sip
    for info in (
        api.SIPInboundTrunkInfo(numbers=[AUTH_NUMBER], auth_username="u", auth_password="p"),
        api.SIPInboundTrunkInfo(numbers=[number(0)]),
    ):
        created = await sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=info))
        await sip.create_dispatch_rule(api.CreateSIPDispatchRuleRequest(dispatch_rule=rule(created.sip_trunk_id, -1)))


async def loaded_store(kind: str, node_dir: Path, redis: RedisServer) -> SIPStore:
    """The bridge's store, loaded into this process as a node loads it, for the decision's own CPU."""
    backend: RedisBackend | SqliteBackend
    if kind == "redis":
        backend = RedisBackend(RedisConfig(address=redis.address))
    else:
        backend = SqliteBackend(node_dir / "store.db", read_only=True)
        backend.open()
    store = SIPStore(backend)
    for table in ("sip_trunk", "sip_inbound_trunk", "sip_outbound_trunk", "sip_dispatch_rule"):
        store.table_snapshot(table, await backend.get_all(table))
    await backend.close()
    return store


async def sipbridge_run(
    kind: str, workdir: Path, redis: RedisServer, server: LiveKitServer, count: int
) -> dict[str, Any]:
    extra = {"logging": {"level": "warn"}}
    redis_if = redis if kind == "redis" else None
    clear_sip_tables(redis)
    with BridgeProcess(workdir / f"{kind}-small", livekit=server, redis=redis_if, extra=extra) as small:
        small_rss = rss_bytes(small.process.pid)
        client = api.LiveKitAPI(small.http_url, small.api_key, small.api_secret)
        try:
            await seed(client)
        finally:
            await client.aclose()
        baseline = await wire_invites(small)
    baseline |= decision_cpu(await loaded_store(kind, workdir / f"{kind}-small", redis), 1)
    clear_sip_tables(redis)
    results: dict[str, Any] = {"baseline": baseline}
    node_dir = workdir / f"{kind}-full"
    with BridgeProcess(node_dir, livekit=server, redis=redis_if, extra=extra) as bridge:
        client = api.LiveKitAPI(bridge.http_url, bridge.api_key, bridge.api_secret)
        try:
            results |= await crud(client, count)
        finally:
            await client.aclose()
        bridge.restart()  # RSS of a node that loaded the store, not of one that built it request by request
        records = 2 * count + BIG_TRUNKS + 2
        results["RSS KiB per record"] = round((rss_bytes(bridge.process.pid) - small_rss) / records / 1024, 2)
        results |= await wire_invites(bridge)
    results |= decision_cpu(await loaded_store(kind, node_dir, redis), count)
    clear_sip_tables(redis)
    return results


async def livekit_server_run(redis: RedisServer, server: LiveKitServer, count: int) -> dict[str, Any]:
    clear_sip_tables(redis)
    client = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
    try:
        return await crud(client, count)
    finally:
        await client.aclose()
        clear_sip_tables(redis)


def print_table(results: dict[str, dict[str, Any]]) -> None:
    rows = sorted({key for figures in results.values() for key in figures if key != "baseline"})
    names = list(results)
    print(f"{'figure':42}" + "".join(f"{n:>28}" for n in names))
    for row in rows:
        cells = []
        for name in names:
            value = results[name].get(row)
            if isinstance(value, dict):
                cells.append(f"p50 {value['p50']} / p99 {value['p99']}")
            else:
                cells.append("" if value is None else str(value))
        print(f"{row:42}" + "".join(f"{c:>28}" for c in cells))
    for name, figures in results.items():
        if "baseline" in figures:
            print(f"\n{name}, baseline (2 trunks, 2 rules):")
            for key, value in sorted(figures["baseline"].items()):
                print(f"  {key:42} {value}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trunks", type=int, default=10_000)
    parser.add_argument("--only", choices=["embedded", "redis", "livekit-server"], action="append")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    wanted = args.only or ["embedded", "redis", "livekit-server"]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-config-") as tmp:
        workdir = Path(tmp)
        with (
            RedisServer(workdir / "redis") as redis,
            LiveKitServer(workdir / "lk", redis=redis, log_level="warn") as server,
        ):
            if "livekit-server" in wanted:
                results["livekit-server (Redis)"] = await livekit_server_run(redis, server, args.trunks)
            for kind in ("embedded", "redis"):
                if kind in wanted:
                    results[f"sipbridge ({kind})"] = await sipbridge_run(kind, workdir, redis, server, args.trunks)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print_table(results)


if __name__ == "__main__":
    asyncio.run(main())
