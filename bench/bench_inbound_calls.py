"""N concurrent inbound calls with audio into rooms: the bridge's CPU and memory per call, and its latencies.

Each call is a real one: sipp dials the bridge (a real `sipbridge` process joined to a real livekit-server), an
RTP socket plays the caller's tone, the bridge joins the caller to its own room (individual dispatch rule), an
agent in that room (in worker processes, harness.agent_pool, so its cost is not counted) publishes a tone, and
the bridge answers.

Figures, per N:
* CPU per call: the bridge process's CPU seconds per second of steady call time, divided by N (from
  /proc/<pid>/stat, so only the bridge is counted);
* memory per call: the bridge's RSS with N calls up minus its idle RSS, divided by N;
* INVITE -> participant joined and INVITE -> 200 OK: from the bridge's own log lines for each call (its
  receipt of the INVITE, its room join, its answer), p50 and p99. The answer waits for the agent's audio to
  arrive, so it includes the agent's join and publish time;
* both ways: with all N calls up (after the CPU window), the calls whose room hears its own caller's tone at least
  10 dB above every other caller's (one room after another) and whose phone hears its agent (harness.call_load,
  the check the CI load test makes with fewer calls). This is the capacity figure: how many simultaneous calls
  one bridge carries on this machine. Callers have tones of their own up to 20 calls; above that the column is
  "-".

Scenarios (`--scenarios`): `agent`, the calls above; `ringing`, the same calls with no agent, so the bridge
rings them with its participant waiting in the room and nothing answers (measured once every call has joined).
`--transports sdk lean` measures each room transport (config `room_transport`) in turn, same run, same server;
`--threads` adds where the bridge's CPU went, per thread name, ms/s per call.

Bounded: each N holds its calls for `--seconds` after all are answered; everything is stopped at the end.
Run: .venv/bin/python bench/bench_inbound_calls.py [--calls 5 10 20] [--seconds 10] [--scenarios agent ringing]
     [--transports sdk lean] [--threads]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from collections.abc import Awaitable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench_util import cpu_seconds, percentile, rss_bytes, thread_cpu
from harness.agent_pool import AgentPool
from harness.bridge import BridgeProcess
from harness.call_load import AGENT_TONE, MAX_CALLER_TONES, caller_tone, phone_hears_agent, room_hears_caller
from harness.processes import LiveKitServer
from harness.rooms import wait_for_room
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api

WAVE = 5
CHECK_SECONDS = 20.0
"""How long one call's audio check may take before the call counts as not carrying audio both ways."""
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*\[callID=(SCL_\w+) ")


def latencies(log: str) -> tuple[list[float], list[float]]:
    """(INVITE -> joined, INVITE -> answered) in ms for each call in the bridge's log."""
    events: dict[str, dict[str, float]] = {}
    for line in log.splitlines():
        match = LOG_TIME.match(line)
        if not match:
            continue
        at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        kind = "invite" if "INVITE from" in line else "joined" if "joined room" in line else None
        kind = kind or ("answered" if line.rstrip().endswith("answered") else None)
        if kind:
            events.setdefault(match.group(2), {})[kind] = at
    joined = [1000 * (e["joined"] - e["invite"]) for e in events.values() if {"invite", "joined"} <= e.keys()]
    answered = [1000 * (e["answered"] - e["invite"]) for e in events.values() if {"invite", "answered"} <= e.keys()]
    return joined, answered


async def count_both_ways(agents: AgentPool, rooms: list[str], phones: list[RtpPhone]) -> int:
    """How many calls carry their own caller's tone into their room and their agent's tone to their phone; rooms
    are sampled one after another (twenty at once is the agents' overload, not the bridge's). Each failure is
    reported on stderr."""
    calls = len(phones)

    async def ok(check: Awaitable[None]) -> bool:
        try:
            await check
        except AssertionError as failure:
            print(f"not both ways: {failure}", file=sys.stderr, flush=True)
            return False
        return True

    at_phones = await asyncio.gather(*(ok(phone_hears_agent(phones[i], i, calls, CHECK_SECONDS)) for i in range(calls)))
    both = 0
    for i, room in enumerate(rooms):
        caller = f"sip_+1310555{1000 + i}"
        both += at_phones[i] and await ok(room_hears_caller(agents, room, caller, i, calls, CHECK_SECONDS))
    return both


async def run(
    calls: int, seconds: float, workdir: Path, server: LiveKitServer, transport: str, scenario: str, threads: bool
) -> str:
    extra = {"logging": {"level": "info"}}
    with BridgeProcess(workdir / "bridge", livekit=server, extra=extra, room_transport=transport) as bridge:
        prefix = f"bench{calls}{transport}{scenario}-"
        client = api.LiveKitAPI(bridge.http_url, bridge.api_key, bridge.api_secret)
        await client.sip.create_inbound_trunk(
            api.CreateSIPInboundTrunkRequest(trunk=api.SIPInboundTrunkInfo(numbers=["+15105550100"]))
        )
        rule = api.SIPDispatchRule(dispatch_rule_individual=api.SIPDispatchRuleIndividual(room_prefix=prefix))
        await client.sip.create_dispatch_rule(
            api.CreateSIPDispatchRuleRequest(dispatch_rule=api.SIPDispatchRuleInfo(rule=rule))
        )
        await client.aclose()
        lkapi = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
        pid = bridge.process.pid
        idle_rss = rss_bytes(pid)
        phones = [RtpPhone() for _ in range(calls)]
        with_agent = scenario == "agent"
        agents = AgentPool(server.ws_url, server.api_key, server.api_secret, workers=max(1, calls // 5))
        if with_agent:
            await agents.start()
        hold_ms = int((seconds + 120) * 1000)
        checked = with_agent and calls <= MAX_CALLER_TONES
        rooms: list[str] = []
        # the line each call's progress is counted by: answered, or (ringing) its participant in the room
        reached = "] answered" if with_agent else "] joined room"
        try:
            for i, phone in enumerate(phones):
                await phone.start()
                phone.play_tone(caller_tone(i) if checked else 440)
            sipps = [
                SippPhone(workdir / f"sipp{i}", bridge.sip_port, p.port, from_=f"+1310555{1000 + i}")
                for i, p in enumerate(phones)
            ]
            tasks: list[asyncio.Task[object]] = []
            # Calls arrive in waves of WAVE, each answered before the next rings in, as on a busy trunk: twenty
            # WebRTC handshakes in the same instant overrun a 2-core machine that also runs the callers and agents.
            for wave in range(0, calls, WAVE):
                members = range(wave, min(wave + WAVE, calls))
                for i in members:
                    if with_agent:
                        call = sipps[i].call(hold_ms=hold_ms, limit=hold_ms / 1000 + 30)
                    else:
                        call = sipps[i].call_and_cancel(after_ms=hold_ms, limit=hold_ms / 1000 + 30)
                    tasks.append(asyncio.create_task(call))
                if with_agent:
                    for i in members:
                        rooms.append(await wait_for_room(lkapi, f"{prefix}_+1310555{1000 + i}_", within=60))
                        await agents.join(rooms[i], "agent", tone=AGENT_TONE, listen=False)
                deadline = time.monotonic() + 60
                while bridge.log_text().count(reached) < members.stop and time.monotonic() < deadline:  # noqa: ASYNC110 (polls another process)
                    await asyncio.sleep(0.2)
            reached_calls = bridge.log_text().count(reached)
            await asyncio.sleep(2)  # settle
            cpu0, threads0, t0 = cpu_seconds(pid), thread_cpu(pid), time.monotonic()
            await asyncio.sleep(seconds)
            elapsed = time.monotonic() - t0
            cpu = (cpu_seconds(pid) - cpu0) / elapsed
            threads1 = thread_cpu(pid)
            rss = rss_bytes(pid)
            joined, answered = latencies(bridge.log_text())
            audio = f"{await count_both_ways(agents, rooms, phones)}/{calls}" if checked else "-"
            for task in tasks:
                task.cancel()
        finally:
            if with_agent:
                await agents.close()
            for phone in phones:
                await phone.close()
            await lkapi.aclose()
    load = os.getloadavg()[0]
    row = (
        f"{transport:>9} {scenario:>8} {calls:>5} {reached_calls:>7} {audio:>6} {1000 * cpu / calls:>14.1f} "
        f"{(rss - idle_rss) / calls / 2**20:>9.1f} {percentile(joined, 50):>9.0f} {percentile(joined, 99):>9.0f} "
        f"{percentile(answered, 50):>8.0f} {percentile(answered, 99):>8.0f} {load:>6.1f}"
    )
    if threads:
        spent = {name: 1000 * (total - threads0.get(name, 0.0)) / elapsed / calls for name, total in threads1.items()}
        busiest = sorted(((ms, name) for name, ms in spent.items() if ms >= 0.05), reverse=True)
        row += "\n      threads ms/s/call: " + ", ".join(f"{name} {ms:.1f}" for ms, name in busiest)
    return row


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--scenarios", nargs="+", choices=["agent", "ringing"], default=["agent"])
    parser.add_argument("--transports", nargs="+", choices=["sdk", "lean"], default=["sdk"])
    parser.add_argument("--threads", action="store_true", help="CPU per thread group, too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-inbound-") as tmp, LiveKitServer(Path(tmp) / "lk") as server:
        print("transport scenario calls reached  audio  CPU ms/s/call  MiB/call  join p50  join p99  200 p50", end="")
        print("  200 p99  load")
        for n in args.calls:
            for scenario in args.scenarios:
                for transport in args.transports:
                    workdir = Path(tmp) / f"n{n}-{scenario}-{transport}"
                    print(await run(n, args.seconds, workdir, server, transport, scenario, args.threads), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
