"""sipbridge against LiveKit's Go SIP service (github.com/livekit/sip), side by side, in one run: cost per call.

One run starts Redis and a livekit-server on it (so livekit-server serves the SIP API and hands calls to SIP nodes
over psrpc), then, for each row, a fresh node of each bridge in turn beside it: sipbridge as a cluster node (redis,
no api_port) and the Go service's `livekit-sip`. Trunks and dispatch rules are created through livekit-server's SIP
API, the same for both; the same load goes to each. Scenarios:

* inbound: N sipp callers (PCMU, each RTP socket playing a 440 Hz tone) call a trunk number; an individual dispatch
  rule puts each in its own room, where an agent (in worker processes, harness.agent_pool, so its CPU is not counted)
  publishes a 1000 Hz tone; the bridge answers once it hears the agent. Calls come in waves of 5. N = --calls.
* ringing: N callers, no agent: every call rings (a SIP participant in its room, no answer). N = --ringing-calls.
* outbound: N `CreateSIPParticipant` requests to livekit-server (wait_until_answered), each to its own sipp callee
  (outbound trunk per callee) that rings 100 ms and answers; an agent in each room publishes the tone. N =
  --outbound-calls.

Figures per bridge, scenario and N:
* CPU ms/s/call: CPU time of the bridge's process (and any child: its whole session, /proc/<pid>/stat) over the
  steady window of --seconds with every call up, per second of window, divided by N;
* MiB/call: RSS with the calls up minus the node's idle RSS (taken before the first call), divided by N; idle MiB;
* answer p50/p99 (ms): inbound: the caller's INVITE sent -> its 200 received (ringing: -> 180 received), from sipp's
  message log; outbound: the API request -> the callee's 200 sent (so it includes the callee's 100 ms ring);
* audio p50/p99 (ms): inbound: INVITE sent -> the first RTP packet carrying the agent's tone at the caller's socket;
  outbound: API request -> the same at the callee's socket. Both measured outside the bridges, the same way for both;
* answered, audio ok: calls answered (ringing: ringing with the SIP participant in its room), and calls whose audio
  was verified both ways after the window (the agent hears the phone's 440 Hz, the phone hears the agent's 1000 Hz,
  each > 10 dB above the other tone). A row with any call unanswered or without audio both ways gets no score
  (CPU and MiB shown in brackets and left out of the ratio).
* ratio: sipbridge / Go of CPU and MiB per call, when both rows are scored.

The Go binary: --go-sip PATH (default: $SIPBRIDGE_GO_SIP, else livekit-sip in the peers' cache dir, from
`scripts/install-peers livekit-sip`).
Bounded: each row has a time limit, every process is stopped at the end (harness.ManagedProcess). Run on purpose, not
from pytest: .venv/bin/python bench/bench_vs_go.py [--calls 5 10 20] [--seconds 20] [--only sipbridge|go]
[--room-transport sdk|lean] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench_util import cpu_seconds, percentile, rss_bytes, sipp_first, thread_cpu
from harness.agent_pool import AgentPool
from harness.audio import rms_dbfs, tone_margin
from harness.go_sip import GoSipNode, Node, SipbridgeNode, configured_go_sip, go_version
from harness.processes import LiveKitServer, RedisServer
from harness.rtp_phone import RATE, RtpPhone
from harness.sipp_callee import SippCallee
from harness.sipp_phone import PhoneResult, SippPhone
from livekit import api

from sipbridge.room.transport import DEFAULT_ROOM_TRANSPORT

TRUNK_NUMBER = "+15105550100"
CALLER_TONE = 440.0
AGENT_TONE = 1000.0
WAVE = 5
"""Calls start in waves of this many, each wave up before the next: twenty WebRTC handshakes at the same instant
overrun a 2-core machine that also runs livekit-server, the callers and the agents."""
SETTLE = 2.0
WAVE_LIMIT = 90.0
LOUD_DBFS = -40.0
MARGIN_DB = 10.0
IDLE_WAIT = 3.0
BRIDGES = ("sipbridge", "go")
THREADS_SHOWN = 8


class TimedPhone(RtpPhone):
    """An RtpPhone that notes the wall-clock time of the first packet carrying audio (above LOUD_DBFS)."""

    def __init__(self) -> None:
        super().__init__()
        self.first_audio_at: float | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        count = len(self.received)
        super().datagram_received(data, addr)
        if self.first_audio_at is None and len(self.received) > count and rms_dbfs(self.received[-1]) > LOUD_DBFS:
            self.first_audio_at = time.time()

    def hears(self, freq: float, other: float) -> tuple[bool, str]:
        """Whether the last two seconds are `freq` (loud, > MARGIN_DB over `other`), and what was heard."""
        tail: npt.NDArray[np.int16] = self.heard()[-2 * RATE :]
        if len(tail) < 2 * RATE:
            return False, f"{len(tail) / RATE:.1f} s heard"
        level = rms_dbfs(tail)
        margin = tone_margin(tail, RATE, freq, [other]) if level > LOUD_DBFS else math.nan
        return level > LOUD_DBFS and margin > MARGIN_DB, f"{level:.0f} dBFS, margin {margin:.0f} dB"


@dataclass
class Row:
    """One bridge's figures for one scenario and N."""

    bridge: str
    scenario: str
    calls: int
    answered: int = 0
    audio_ok: int = 0
    audio_checked: bool = True
    """False for ringing calls, which carry no audio to check."""
    cpu_ms_per_s_per_call: float = math.nan
    mib_per_call: float = math.nan
    idle_mib: float = math.nan
    answer_p50_ms: float = math.nan
    answer_p99_ms: float = math.nan
    audio_p50_ms: float = math.nan
    audio_p99_ms: float = math.nan
    window_s: float = 0.0
    load: float = 0.0
    threads: dict[str, float] = field(default_factory=dict)
    """Share of the window's CPU per thread name (the largest few), from /proc/<pid>/task/*/stat."""
    failures: list[str] = field(default_factory=list)

    @property
    def scored(self) -> bool:
        audio = self.audio_ok == self.calls or not self.audio_checked
        return self.answered == self.calls and audio and not self.failures


@dataclass
class Call:
    """One call of a row: the phone's RTP socket, its sipp, and what is learnt about it."""

    index: int
    phone: TimedPhone
    room: str = ""
    identity: str = ""
    started_at: float = math.nan
    answered_at: float | None = None
    sipp: SippPhone | SippCallee | None = None
    task: asyncio.Task[PhoneResult] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Bench:
    """Everything one run shares: Redis, livekit-server, its API client, and where files go."""

    def __init__(
        self,
        workdir: Path,
        server: LiveKitServer,
        redis: RedisServer,
        go_sip: Path,
        seconds: float,
        room_transport: str | None = None,
        py_spy: Path | None = None,
        profile_dir: Path | None = None,
        bridge_nice: int = 0,
    ) -> None:
        self.workdir = workdir
        self.room_transport = room_transport
        self.py_spy = py_spy
        self.profile_dir = profile_dir
        self.bridge_nice = bridge_nice
        self.server = server
        self.redis = redis
        self.go_sip = go_sip
        self.seconds = seconds
        self.api = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)

    def node(self, bridge: str, workdir: Path) -> SipbridgeNode | GoSipNode:
        if bridge == "sipbridge":
            extra = {"room_transport": self.room_transport} if self.room_transport else None
            return SipbridgeNode(workdir, self.server, self.redis, extra)
        return GoSipNode(workdir, self.go_sip, self.server, self.redis, rtp_ports=400)

    async def clean(self) -> None:
        """No trunks, rules or rooms left from the row before."""
        sip = self.api.sip
        for rule in (await sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())).items:
            await sip.delete_dispatch_rule(
                api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule.sip_dispatch_rule_id)
            )
        for trunks in (
            (await sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())).items,
            (await sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())).items,
        ):
            for trunk in trunks:
                await sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=trunk.sip_trunk_id))
        for room in (await self.api.room.list_rooms(api.ListRoomsRequest())).rooms:
            with contextlib.suppress(api.TwirpError):
                await self.api.room.delete_room(api.DeleteRoomRequest(room=room.name))

    async def inbound_config(self, prefix: str) -> None:
        trunk = api.SIPInboundTrunkInfo(name="bench", numbers=[TRUNK_NUMBER])
        await self.api.sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=trunk))
        rule = api.SIPDispatchRule(dispatch_rule_individual=api.SIPDispatchRuleIndividual(room_prefix=prefix))
        info = api.SIPDispatchRuleInfo(rule=rule, name="bench")
        await self.api.sip.create_dispatch_rule(api.CreateSIPDispatchRuleRequest(dispatch_rule=info))

    async def sip_participant(self, prefix: str, caller: str) -> tuple[str, str] | None:
        """(room, identity) of the SIP participant for `caller` in a room named `prefix`..., if there is one."""
        for room in (await self.api.room.list_rooms(api.ListRoomsRequest())).rooms:
            if not room.name.startswith(prefix) or caller not in room.name:
                continue
            listed = await self.api.room.list_participants(api.ListParticipantsRequest(room=room.name))
            for participant in listed.participants:
                if participant.kind == api.ParticipantInfo.SIP:
                    return room.name, participant.identity
        return None

    async def aclose(self) -> None:
        await self.api.aclose()


async def wait_until(condition: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def started_phone(attempts: int = 5) -> TimedPhone:
    """A TimedPhone on a free port, started: the port is chosen by binding and releasing it, so on a busy machine
    another process may take it before the phone binds it again; then try another."""
    for attempt in range(attempts):
        phone = TimedPhone()
        try:
            await phone.start()
            return phone
        except OSError:
            await phone.close()
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def all_heard(calls: Sequence[Call]) -> bool:
    return all(call.phone.first_audio_at is not None for call in calls)


async def until_async(condition: Callable[[], Any], within: float) -> Any:
    """Poll the coroutine function `condition` until it returns something truthy (returned) or `within` passes."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if result := await condition():
            return result
        await asyncio.sleep(0.3)
    return None


def read_messages(sipp: SippPhone | SippCallee) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(sipp.workdir.glob("*-messages.log")))


@contextlib.asynccontextmanager
async def agent_pool(bench: Bench, calls: int) -> AsyncIterator[AgentPool]:
    agents = AgentPool(bench.server.ws_url, bench.server.api_key, bench.server.api_secret, workers=max(1, calls // 5))
    await agents.start()
    try:
        yield agents
    finally:
        await agents.close()


async def verify_audio(agents: AgentPool, calls: Sequence[Call], row: Row) -> None:
    """Each room hears its caller's tone and each phone hears its agent's tone, over the last two seconds."""

    async def one(call: Call) -> bool:
        try:
            report = await agents.tone(call.room, call.identity, CALLER_TONE, [AGENT_TONE])
        except AssertionError as exc:
            row.failures.append(f"call {call.index}: room: {exc}")
            return False
        room_ok = report.rms_dbfs > LOUD_DBFS and report.margin_db > MARGIN_DB
        phone_ok, heard = call.phone.hears(AGENT_TONE, CALLER_TONE)
        if not room_ok:
            row.failures.append(f"call {call.index}: room hears {report.rms_dbfs:.0f} dBFS, {report.peaks}")
        if not phone_ok:
            row.failures.append(f"call {call.index}: phone hears {heard}")
        return room_ok and phone_ok

    row.audio_ok = sum(await asyncio.gather(*(one(call) for call in calls)))


async def profile(bench: Bench, node: Node, row: Row, seconds: float) -> asyncio.subprocess.Process | None:
    """py-spy recording sipbridge's process over the window (--py-spy), as collapsed stacks in --profile-dir."""
    if bench.py_spy is None or bench.profile_dir is None or row.bridge != "sipbridge":
        return None
    bench.profile_dir.mkdir(parents=True, exist_ok=True)
    out = bench.profile_dir / f"{row.bridge}-{row.scenario}-{row.calls}.txt"
    argv = [str(bench.py_spy), "record", "--pid", str(node.pid), "--duration", str(round(seconds))]
    argv += ["--rate", "100", "--nonblocking", "--format", "raw", "--output", str(out)]
    return await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


async def measure(bench: Bench, node: Node, row: Row) -> None:
    """CPU and RSS over the steady window; all calls are up when this is called."""
    seconds = bench.seconds
    await asyncio.sleep(SETTLE)
    spy = await profile(bench, node, row, seconds)
    threads0, cpu0, t0 = thread_cpu(node.pid), cpu_seconds(node.pid), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, elapsed = cpu_seconds(node.pid) - cpu0, time.monotonic() - t0
    used = {name: spent - threads0.get(name, 0.0) for name, spent in thread_cpu(node.pid).items()}
    top = sorted(used.items(), key=lambda item: item[1], reverse=True)[:THREADS_SHOWN]
    row.threads = {name: round(spent / cpu, 3) for name, spent in top if cpu > 0 and spent > 0}
    row.window_s = elapsed
    row.cpu_ms_per_s_per_call = 1000 * cpu / elapsed / row.calls
    row.load = os.getloadavg()[0]
    row.mib_per_call = (rss_bytes(node.pid) / 2**20 - row.idle_mib) / row.calls
    if spy is not None:
        async with asyncio.timeout(30):
            await spy.wait()


def latencies(row: Row, answer: list[float], audio: list[float]) -> None:
    row.answer_p50_ms, row.answer_p99_ms = percentile(answer, 50), percentile(answer, 99)
    row.audio_p50_ms, row.audio_p99_ms = percentile(audio, 50), percentile(audio, 99)


async def inbound(bench: Bench, node: Node, row: Row, workdir: Path, *, with_agents: bool) -> None:
    prefix = f"{row.bridge}-{row.scenario}{row.calls}-"
    await bench.inbound_config(prefix)
    calls: list[Call] = []
    hold_ms = int((bench.seconds + SETTLE + row.calls * 10 + 120) * 1000)
    async with contextlib.AsyncExitStack() as stack:
        agents = await stack.enter_async_context(agent_pool(bench, row.calls)) if with_agents else None
        for index in range(row.calls):
            call = Call(index, await started_phone())
            calls.append(call)
            stack.push_async_callback(call.phone.close)
            call.phone.play_tone(CALLER_TONE)
        for wave in range(0, row.calls, WAVE):
            members = calls[wave : wave + WAVE]
            for call in members:
                caller = f"+1310555{1000 + call.index}"
                call.sipp = SippPhone(workdir / f"sipp{call.index}", node.sip_port, call.phone.port, from_=caller)
                call.task = asyncio.create_task(call.sipp.call(hold_ms=hold_ms, limit=hold_ms / 1000 + 30))
                stack.callback(call.task.cancel)
                call.extra["caller"] = caller
            for call in members:
                found = await until_async(partial(bench.sip_participant, prefix, call.extra["caller"]), WAVE_LIMIT)
                if found is None:
                    row.failures.append(f"call {call.index}: no SIP participant in a room")
                    continue
                call.room, call.identity = found
                if agents is not None:
                    await agents.join(call.room, "agent", tone=AGENT_TONE, listen=False)
            if agents is not None:
                await wait_until(partial(all_heard, [c for c in members if c.room]), WAVE_LIMIT)
        await measure(bench, node, row)
        answer, audio = [], []
        for call in calls:
            assert call.sipp is not None
            messages = read_messages(call.sipp)
            invite = sipp_first(messages, "sent", "INVITE")
            reply = sipp_first(messages, "received", "SIP/2.0 200" if with_agents else "SIP/2.0 180")
            if invite is not None and reply is not None:
                answer.append(1000 * (reply - invite))
                if with_agents:
                    row.answered += 1
            if invite is not None and call.phone.first_audio_at is not None:
                audio.append(1000 * (call.phone.first_audio_at - invite))
        if agents is not None:
            await verify_audio(agents, [c for c in calls if c.room], row)
        else:
            # Ringing: answered = ringing with the SIP participant in its room; there is no audio to verify.
            still = [await bench.sip_participant(prefix, c.extra["caller"]) for c in calls]
            row.answered = sum(1 for s in still if s is not None)
            row.audio_checked = False
        latencies(row, answer, audio)


async def outbound(bench: Bench, node: Node, row: Row, workdir: Path) -> None:
    calls: list[Call] = []
    limit = bench.seconds + SETTLE + row.calls * 10 + 150
    async with contextlib.AsyncExitStack() as stack:
        agents = await stack.enter_async_context(agent_pool(bench, row.calls))
        for index in range(row.calls):
            call = Call(index, await started_phone())
            calls.append(call)
            stack.push_async_callback(call.phone.close)
            call.phone.play_tone(CALLER_TONE)
            callee = SippCallee(workdir / f"callee{call.index}", call.phone.port)
            call.sipp = callee
            trunk = api.SIPOutboundTrunkInfo(
                name=f"callee {call.index}", address=callee.address, numbers=[TRUNK_NUMBER]
            )
            created = await bench.api.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=trunk))
            call.extra["trunk"] = created.sip_trunk_id
            call.task = asyncio.create_task(callee.answer(ring_ms=100, limit=limit))
            stack.callback(call.task.cancel)
            call.room, call.identity = f"{row.bridge}-out{row.calls}-{call.index}", "callee"
            await agents.join(call.room, "agent", tone=AGENT_TONE, listen=False)

        async def dial(call: Call) -> None:
            request = api.CreateSIPParticipantRequest(
                sip_trunk_id=call.extra["trunk"], sip_call_to=f"+1213555{1000 + call.index}", room_name=call.room,
                participant_identity=call.identity, wait_until_answered=True,
            )  # fmt: skip
            call.started_at = time.time()
            try:
                await bench.api.sip.create_sip_participant(request, timeout=WAVE_LIMIT)
                call.answered_at = time.time()
            except Exception as exc:  # a failed dial is a row failure, reported, not a crash
                row.failures.append(f"call {call.index}: CreateSIPParticipant: {exc!r}")

        for wave in range(0, row.calls, WAVE):
            members = calls[wave : wave + WAVE]
            await asyncio.gather(*(dial(call) for call in members))
            await wait_until(partial(all_heard, [c for c in members if c.answered_at]), WAVE_LIMIT)
        row.answered = sum(1 for call in calls if call.answered_at)
        await measure(bench, node, row)
        answer, audio = [], []
        for call in calls:
            assert call.sipp is not None
            ok = sipp_first(read_messages(call.sipp), "sent", "SIP/2.0 200")
            if call.answered_at and ok is not None:
                answer.append(1000 * (ok - call.started_at))
            if call.answered_at and call.phone.first_audio_at is not None:
                audio.append(1000 * (call.phone.first_audio_at - call.started_at))
        await verify_audio(agents, [c for c in calls if c.answered_at], row)
        latencies(row, answer, audio)


def renice(pid: int, nice: int) -> None:
    """Every thread of `pid` at `nice` (Linux keeps a nice value per thread; threads made later inherit it)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.setpriority(os.PRIO_PROCESS, int(task), nice)


async def run_row(bench: Bench, bridge: str, scenario: str, calls: int) -> Row:
    row = Row(bridge, scenario, calls)
    workdir = bench.workdir / f"{bridge}-{scenario}-{calls}"
    await bench.clean()
    node = bench.node(bridge, workdir / "node")
    await asyncio.to_thread(node.start)
    if bench.bridge_nice:
        renice(node.pid, bench.bridge_nice)
    try:
        await asyncio.sleep(IDLE_WAIT)
        row.idle_mib = rss_bytes(node.pid) / 2**20
        limit = bench.seconds + SETTLE + calls * 15 + 3 * WAVE_LIMIT + 60
        async with asyncio.timeout(limit):
            if scenario == "outbound":
                await outbound(bench, node, row, workdir)
            else:
                await inbound(bench, node, row, workdir, with_agents=scenario == "inbound")
    except TimeoutError:
        row.failures.append(f"row did not finish within its limit ({limit:.0f} s)")
    except Exception as exc:  # one row's breakage is reported in its row; the run goes on
        row.failures.append(f"row failed: {exc!r}")
    finally:
        await asyncio.to_thread(node.stop)
        if bench.py_spy is not None and bench.profile_dir is not None:  # the node's log beside its profile
            (bench.profile_dir / f"{bridge}-{scenario}-{calls}.log").write_text(node.log_text())
        await bench.clean()
    return row


def fmt(value: float, scored: bool, digits: int = 1) -> str:
    if math.isnan(value):
        return "-"
    text = f"{value:.{digits}f}"
    return text if scored else f"({text})"


def ratio(rows: list[Row], row: Row, attribute: str) -> str:
    """sipbridge / Go for `row`'s scenario and N, on the sipbridge line, when both are scored."""
    if row.bridge != "sipbridge":
        return ""
    go = next((r for r in rows if r.bridge == "go" and (r.scenario, r.calls) == (row.scenario, row.calls)), None)
    if go is None or not (row.scored and go.scored):
        return "-"
    return f"{getattr(row, attribute) / getattr(go, attribute):.2f}x"


def table(rows: list[Row], show_threads: bool = False) -> str:
    header = (
        f"{'scenario':<9} {'N':>3} {'bridge':<9} {'answered':>8} {'audio':>5} {'CPU ms/s/call':>13} "
        f"{'MiB/call':>8} {'idle MiB':>8} {'answer p50/p99 ms':>17} {'audio p50/p99 ms':>16} "
        f"{'CPU ratio':>9} {'MiB ratio':>9} {'load':>5}"
    )
    lines = [header]
    for row in rows:
        s = row.scored
        audio = row.audio_ok if row.audio_checked else "n/a"
        lines.append(
            f"{row.scenario:<9} {row.calls:>3} {row.bridge:<9} {f'{row.answered}/{row.calls}':>8} {audio:>5} "
            f"{fmt(row.cpu_ms_per_s_per_call, s):>13} {fmt(row.mib_per_call, s):>8} {fmt(row.idle_mib, True, 0):>8} "
            f"{fmt(row.answer_p50_ms, True, 0) + '/' + fmt(row.answer_p99_ms, True, 0):>17} "
            f"{fmt(row.audio_p50_ms, True, 0) + '/' + fmt(row.audio_p99_ms, True, 0):>16} "
            f"{ratio(rows, row, 'cpu_ms_per_s_per_call'):>9} {ratio(rows, row, 'mib_per_call'):>9} {row.load:>5.1f}"
        )
    if show_threads:
        for row in rows:
            shares = ", ".join(f"{name} {100 * share:.0f}%" for name, share in row.threads.items())
            lines.append(f"  threads {row.bridge} {row.scenario} N={row.calls}: {shares}")
    for row in rows:
        for failure in row.failures[:5]:
            lines.append(f"  {row.bridge} {row.scenario} N={row.calls}: {failure}")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--go-sip", type=Path, default=configured_go_sip(), help="the Go service's binary")
    parser.add_argument("--only", choices=BRIDGES, help="run one bridge only")
    parser.add_argument(
        "--calls", type=int, nargs="*", default=[5, 10, 20], help="N for inbound with agents (none: skip)"
    )
    parser.add_argument("--ringing-calls", type=int, nargs="*", default=[10], help="N for ringing without agent")
    parser.add_argument("--outbound-calls", type=int, nargs="*", default=[10], help="N for outbound")
    parser.add_argument("--seconds", type=float, default=20.0, help="steady window per row (default 20)")
    parser.add_argument(
        "--room-transport", choices=("sdk", "lean"), help="sipbridge's room_transport (default: the bridge's default)"
    )
    parser.add_argument(
        "--py-spy", type=Path, help="py-spy binary: record sipbridge's process over each window (not for the figures)"
    )
    parser.add_argument(
        "--profile-dir", type=Path, default=Path("bench-profiles"), help="where --py-spy writes (and each node's log)"
    )
    parser.add_argument(
        "--bridge-nice",
        type=int,
        default=0,
        help="nice value for the bridge under test (e.g. -5, as root): the same for both bridges, so that on a "
        "small machine the load generators do not starve it",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--threads", action="store_true", help="under the table, each row's CPU by thread name")
    args = parser.parse_args()
    bridges = [args.only] if args.only else list(BRIDGES)
    if "go" in bridges and not os.access(args.go_sip, os.X_OK):
        parser.error(f"no Go SIP service at {args.go_sip}: run `scripts/install-peers livekit-sip` or pass --go-sip")
    transport = args.room_transport or DEFAULT_ROOM_TRANSPORT
    plan = [("inbound", n) for n in args.calls] + [("ringing", n) for n in args.ringing_calls]
    plan += [("outbound", n) for n in args.outbound_calls]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-vs-go-") as tmp:
        workdir = Path(tmp)
        with RedisServer(workdir / "redis") as redis, LiveKitServer(workdir / "lk", redis=redis) as server:
            bench = Bench(
                workdir, server, redis, args.go_sip.resolve(), args.seconds, args.room_transport, args.py_spy,
                args.profile_dir, args.bridge_nice,
            )  # fmt: skip
            try:
                for scenario, n in plan:
                    for bridge in bridges:
                        row = await run_row(bench, bridge, scenario, n)
                        rows.append(row)
                        if not args.json:
                            print(f"done: {bridge} {scenario} N={n}", file=sys.stderr, flush=True)
            finally:
                await bench.aclose()
    if args.json:
        meta = {
            "go_sip": str(args.go_sip),
            "go_version": go_version(args.go_sip) if "go" in bridges else None,
            "room_transport": transport,
        }
        print(json.dumps({"meta": meta, "rows": [{**asdict(r), "scored": r.scored} for r in rows]}, indent=2))
    else:
        if "go" in bridges:
            print(f"Go SIP service: {args.go_sip} ({go_version(args.go_sip)})")
        if "sipbridge" in bridges:
            print(f"sipbridge room_transport: {transport}")
        if args.bridge_nice:
            print(f"bridges under test at nice {args.bridge_nice}")
        print(table(rows, args.threads))


if __name__ == "__main__":
    asyncio.run(main())
