"""Soak: N inbound calls cycling for M minutes against a real bridge, and what the bridge holds over time.

A real `sipbridge` process joined to a real livekit-server, one trunk and an individual dispatch rule (a room per
call). N lines each place one call after another: sipp dials from a new caller number, an RTP phone plays a tone,
an agent (harness.agent_pool, in worker processes) joins the call's room and publishes a tone so the bridge
answers, the call is held for `--hold` seconds and the phone hangs up; the agent leaves and the line dials again.
With `--no-agents` nobody answers: each call rings for `--hold` seconds and the phone cancels it (the room join,
the ringing and the RTP port without the WebRTC media).

Every `--interval` seconds it samples the bridge process: RSS (/proc/<pid>/statm, bench_util.rss_bytes), open file
descriptors (/proc/<pid>/fd), and from its Prometheus endpoint the asyncio tasks, RTP ports in use and active
calls (sipbridge_asyncio_tasks, sipbridge_rtp_ports_in_use, sipbridge_active_calls); and the calls completed and
failed so far. It prints a table as it goes, then the growth per hour of RSS, fds and tasks (least-squares slope
over the second half of the samples: the first half is warm-up) and the difference between the idle bridge before
the first call and after the last one ended, which is where a leak shows whatever the load: calls, ports and tasks
must come back to their idle values. Short runs only show that it works; a leak needs an hour or more.

Bounded: no call starts after `--minutes`; the calls in progress finish (each within its sipp time limit); every
process is stopped at the end, also on Ctrl-C.
Run: .venv/bin/python bench/soak.py [--calls 3] [--minutes 10] [--hold 20] [--interval 5] [--no-agents] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench_util import rss_bytes
from harness.agent_pool import AgentPool
from harness.bridge import BridgeProcess
from harness.call_load import AGENT_TONE
from harness.inbound_setup import configure, individual
from harness.processes import LiveKitServer
from harness.rooms import wait_for_room
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api

PREFIX = "soak-"
CALLER_TONE = 440.0
IDLE_SETTLE_SECONDS = 60.0
"""How long the idle bridge may take, after the last call, to be back at zero calls and ports."""


@dataclass
class Sample:
    seconds: float
    rss_mib: float
    fds: int
    tasks: int
    rtp_ports: int
    active_calls: int
    completed: int
    failed: int


@dataclass
class Report:
    calls: int
    minutes: float
    hold_seconds: float
    agents: bool
    completed: int
    failed: int
    failures: list[str]
    growth_per_hour: dict[str, float]
    """Least-squares slope of rss_mib, fds and tasks over the second half of the calling (the first half warms
    up: imports, the rtc SDK's pools, allocator arenas), per hour."""
    idle_before: Sample
    idle_after: Sample
    load_average: float
    samples: list[Sample]


@dataclass
class Tally:
    completed: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)

    def failure(self, what: str) -> None:
        self.failed += 1
        if len(self.failures) < 10:  # the first few, for the report; the count has them all
            self.failures.append(what)


def sample(bridge: BridgeProcess, started: float, tally: Tally) -> Sample:
    pid = bridge.process.pid
    metrics = bridge.metrics()
    return Sample(
        seconds=round(time.monotonic() - started, 1),
        rss_mib=round(rss_bytes(pid) / 2**20, 1),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        tasks=int(metrics["sipbridge_asyncio_tasks"]),
        rtp_ports=int(metrics["sipbridge_rtp_ports_in_use"]),
        active_calls=int(metrics["sipbridge_active_calls"]),
        completed=tally.completed,
        failed=tally.failed,
    )


def per_hour(samples: list[Sample], name: str) -> float:
    """Least-squares slope of `name` over the samples, per hour."""
    xs = [s.seconds for s in samples]
    ys = [float(getattr(s, name)) for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return 3600 * sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


async def line(
    index: int, until: float, hold: float, workdir: Path, bridge: BridgeProcess, lkapi: api.LiveKitAPI,
    agents: AgentPool | None, tally: Tally,
) -> None:  # fmt: skip
    """One line placing calls one after another until `until` (time.monotonic())."""
    cycle = 0
    while time.monotonic() < until:
        cycle += 1
        caller = f"+1310{index:02d}{cycle:05d}"  # a new number per call: its room's name is its own
        phone = RtpPhone()
        await phone.start()
        phone.play_tone(CALLER_TONE)
        sipp = SippPhone(workdir / f"line{index}", bridge.sip_port, phone.port, from_=caller)
        room = ""
        try:
            if agents is None:
                result = await sipp.call_and_cancel(after_ms=int(hold * 1000), limit=hold + 60)
            else:
                calling = asyncio.create_task(sipp.call(hold_ms=int(hold * 1000), limit=hold + 120))
                try:
                    room = await wait_for_room(lkapi, f"{PREFIX}_{caller}_", within=60)
                    await agents.join(room, "agent", tone=AGENT_TONE, listen=False)
                finally:
                    result = await calling
            result.check()
            tally.completed += 1
        except (AssertionError, OSError, TimeoutError) as exc:  # a failed call is counted, the soak goes on
            tally.failure(f"line {index} call {cycle}: {str(exc).splitlines()[0] if str(exc) else repr(exc)}")
        finally:
            if agents is not None and room:
                await agents.leave(room)
            await phone.close()


async def wait_idle(bridge: BridgeProcess, within: float) -> None:
    """Until the bridge holds no call and no RTP port (bounded: a leak is then what the idle sample shows)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        metrics = bridge.metrics()
        if not metrics["sipbridge_active_calls"] and not metrics["sipbridge_rtp_ports_in_use"]:
            return
        await asyncio.sleep(1)


def row(s: Sample) -> str:
    return (
        f"{s.seconds:>8.0f} {s.rss_mib:>8.1f} {s.fds:>5} {s.tasks:>6} {s.rtp_ports:>6} {s.active_calls:>6} "
        f"{s.completed:>10} {s.failed:>7}"
    )


HEADER = "       s  RSS MiB   fds  tasks  ports  calls  completed  failed"


async def soak(args: argparse.Namespace, workdir: Path, server: LiveKitServer) -> Report:
    with BridgeProcess(workdir / "bridge", livekit=server, extra={"logging": {"level": "info"}}) as bridge:
        client = api.LiveKitAPI(bridge.http_url, bridge.api_key, bridge.api_secret)
        await configure(client, individual(PREFIX), krisp_enabled=False)
        await client.aclose()
        lkapi = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
        agents = None
        if args.agents:
            agents = AgentPool(server.ws_url, server.api_key, server.api_secret, workers=max(1, args.calls // 5))
            await agents.start()
        tally = Tally()
        started = time.monotonic()
        idle_before = sample(bridge, started, tally)
        samples = [idle_before]
        if not args.json:
            print(HEADER)
            print(row(idle_before), "  idle, before the first call", flush=True)
        until = started + 60 * args.minutes
        lines = [
            asyncio.create_task(line(i, until, args.hold, workdir, bridge, lkapi, agents, tally))
            for i in range(args.calls)
        ]
        try:
            while True:
                await asyncio.wait(lines, timeout=args.interval)
                if all(task.done() for task in lines):
                    break
                samples.append(sample(bridge, started, tally))
                if not args.json:
                    print(row(samples[-1]), flush=True)
            for task in lines:
                task.result()  # a line's own failure (not a call's) is the soak's failure
            await wait_idle(bridge, IDLE_SETTLE_SECONDS)
            idle_after = sample(bridge, started, tally)
        finally:
            for task in lines:
                task.cancel()
            await asyncio.gather(*lines, return_exceptions=True)
            if agents is not None:
                await agents.close()
            await lkapi.aclose()
    if not args.json:
        print(row(idle_after), "  idle, after the last call")
    settled = samples[1 + (len(samples) - 1) // 2 :] or samples  # the second half: the first is warm-up
    return Report(
        calls=args.calls,
        minutes=args.minutes,
        hold_seconds=args.hold,
        agents=args.agents,
        completed=tally.completed,
        failed=tally.failed,
        failures=tally.failures,
        growth_per_hour={name: round(per_hour(settled, name), 1) for name in ("rss_mib", "fds", "tasks")},
        idle_before=idle_before,
        idle_after=idle_after,
        load_average=round(os.getloadavg()[0], 1),
        samples=samples,
    )


def summary(report: Report) -> str:
    before, after = asdict(report.idle_before), asdict(report.idle_after)
    lines = [
        f"{report.completed} calls completed, {report.failed} failed over {report.minutes:g} min ({report.calls} "
        f"lines, {report.hold_seconds:g} s calls, {'with' if report.agents else 'no'} agents; "
        f"load average {report.load_average})",
        "growth per hour while calling (second half): "
        + ", ".join(f"{k} {v:+.1f}" for k, v in report.growth_per_hour.items()),
        "idle after - idle before: "
        + ", ".join(f"{k} {after[k] - before[k]:+g}" for k in ("rss_mib", "fds", "tasks", "rtp_ports", "active_calls")),
        *(f"failure: {failure}" for failure in report.failures),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3, help="simultaneous lines, each one call after another")
    parser.add_argument("--minutes", type=float, default=10.0, help="no call starts after this")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds each call lasts (or rings)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--no-agents", dest="agents", action="store_false", help="calls ring and are cancelled")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, LiveKitServer(Path(tmp) / "lk") as server:
        report = asyncio.run(soak(args, Path(tmp), server))
    print(json.dumps(asdict(report), indent=1) if args.json else "\n" + summary(report))


if __name__ == "__main__":
    main()
