"""Kamailio's dispatcher in front of two bridge nodes (deploy/kamailio/dispatcher.cfg, run as shipped).

Both nodes are standalone bridges on one Redis, so the trunk and rule created through one node's API admit calls on
the other. Phones call Kamailio only; the tests check what an operator notices — calls answered, the caller's audio
in the room, which node took each call — while both nodes live, after one is killed (found by the probes, or by
the INVITE that gets no answer), and while one drains.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pytest
from harness.agent_pool import AgentPool
from harness.bridge import BridgeProcess, api_client
from harness.inbound_setup import configure, direct, individual
from harness.participant import TestParticipant
from harness.ports import LOOPBACK, free_tcp_udp_port
from harness.processes import LiveKitServer, ManagedProcess, RedisServer, udp_bound
from harness.rooms import wait_for_call_status, wait_for_participant, wait_for_room
from harness.rtp_phone import RtpPhone
from harness.sipapi import clear_sip_tables
from harness.sipp_phone import PhoneResult, SippPhone
from livekit import api

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("kamailio") is None or shutil.which("kamcmd") is None,
        reason="kamailio is not installed (scripts/install-peers installs it)",
    ),
]

CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "kamailio" / "dispatcher.cfg"
AGENT_TONE = 1000.0
AUTH = ("front", "s3cret")
"""The trunk's digest credentials: a challenged caller's second INVITE must reach the node that challenged it."""
CALL_ID = "call-{}@front.test"
"""Call n's Call-ID. Fixed, so that Kamailio's hash over them chooses alike on every run: calls 0-5 spread over both
nodes, calls 0 and 1 go to different nodes, calls 0 and 3 to the same node."""
# Probe timing for the test that waits for the probes: a dead node is found within about PING_INTERVAL seconds
# plus NODE_TIMEOUT_MS (the shipped 5 s and 2 s would only make the test slower).
PING_INTERVAL = 1
NODE_TIMEOUT_MS = 1000


class KamailioFront:
    """dispatcher.cfg, unedited, with its settings given as -A definitions: a loopback port, a list of the nodes'
    SIP ports, and a control socket in `workdir` for kamcmd; `settings` override the probe timing."""

    def __init__(self, workdir: Path, node_ports: list[int], **settings: int) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_tcp_udp_port()
        self.ctl_path = workdir / "ctl.sock"
        nodes = workdir / "dispatcher.list"
        nodes.write_text("".join(f"1 sip:{LOOPBACK}:{port} 0 0\n" for port in node_ports))
        defines: dict[str, object] = {
            "LISTEN_IP": LOOPBACK,
            "SIP_PORT": self.port,
            "DISPATCHER_LIST": f'"{nodes}"',
            "CTL_SOCKET": f'"unixs:{self.ctl_path}"',
            **settings,
        }
        # -DD -E: stay in the foreground and log to stderr (the log file); small memory pools, as in tests/sip.
        argv: list[str | os.PathLike[str]] = ["kamailio", "-f", CONFIG, "-DD", "-E", "-m", "16", "-M", "4"]
        argv += ["-w", workdir]
        for name, value in defines.items():
            argv += ["-A", f"{name}={value}"]
        self.process = ManagedProcess("kamailio", argv, workdir / "kamailio.log", cwd=workdir)

    def __enter__(self) -> Self:
        listening = udp_bound(LOOPBACK, self.port)
        self.process.start_and_wait(lambda: listening() and self.ctl_path.exists(), what="listening")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.stop()

    async def node_flags(self) -> dict[int, str]:
        """Each node's state by SIP port, from `kamcmd dispatcher.list`: the first letter is A(ctive), I(nactive),
        T(rying) or D(isabled); a P after it means the node is being probed."""
        proc = await asyncio.create_subprocess_exec(
            "kamcmd", "-s", f"unixs:{self.ctl_path}", "dispatcher.list",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
        found = re.findall(r"URI: sip:[\d.]+:(\d+)\s+FLAGS: (\w+)", out.decode())
        assert found, f"kamcmd dispatcher.list: {out.decode()}"
        return {int(port): flags for port, flags in found}

    def log_lines(self, pattern: str) -> list[str]:
        return self.process.grep_log(pattern)


@dataclass
class Call:
    """One phone calling the front: the caller's number and tone, its RTP socket, and the running sipp."""

    caller: str
    tone: float
    phone: RtpPhone
    sipp: asyncio.Task[PhoneResult]
    room: str = ""

    @property
    def identity(self) -> str:
        return f"sip_{self.caller}"


class Phones:
    """Places calls to the front; every phone and sipp still running is closed at the end of the test."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.calls: list[Call] = []

    async def dial(
        self, front_port: int, numbers: range, *, hold_ms: int | None = None, auth: tuple[str, str] | None = None
    ) -> list[Call]:
        """Calls `numbers` at once, each with its own caller number, tone and Call-ID. Without `hold_ms` a phone
        stays on the line until the bridge hangs up, so a slow machine cannot end a call before its audio is
        checked."""
        placed = []
        for index in numbers:
            phone = RtpPhone()
            await phone.start()
            tone = 400.0 + 40 * index
            phone.play_tone(tone)
            caller = f"+1310555{2000 + index}"
            call_id = CALL_ID.format(index)
            sipp = SippPhone(self.workdir / f"sipp{index}", front_port, phone.port, from_=caller, call_id=call_id)
            call = Call(caller, tone, phone, asyncio.create_task(sipp.call(hold_ms=hold_ms, auth=auth, limit=120)))
            self.calls.append(call)
            placed.append(call)
        return placed

    async def close(self) -> None:
        for call in self.calls:
            call.sipp.cancel()
            await asyncio.gather(call.sipp, return_exceptions=True)
            await call.phone.close()


@pytest.fixture
async def phones(tmp_path: Path) -> AsyncIterator[Phones]:
    placed = Phones(tmp_path / "phones")
    yield placed
    await placed.close()


@contextmanager
def two_nodes(
    workdir: Path, livekit_server: LiveKitServer, redis_server: RedisServer, **config: object
) -> Iterator[tuple[BridgeProcess, BridgeProcess]]:
    """Two standalone bridges (each with its api_port) on one Redis, joined to the shared livekit-server."""
    clear_sip_tables(redis_server)
    with (
        BridgeProcess(workdir / "node-a", livekit=livekit_server, redis=redis_server, extra=config) as node_a,
        BridgeProcess(workdir / "node-b", livekit=livekit_server, redis=redis_server, extra=config) as node_b,
    ):
        yield node_a, node_b


@pytest.fixture
def nodes(
    tmp_path: Path, livekit_server: LiveKitServer, redis_server: RedisServer
) -> Iterator[tuple[BridgeProcess, BridgeProcess]]:
    with two_nodes(tmp_path, livekit_server, redis_server) as started:
        yield started


@pytest.fixture
async def agents(livekit_server: LiveKitServer) -> AsyncIterator[AgentPool]:
    pool = AgentPool(livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, workers=2)
    await pool.start()
    yield pool
    await pool.close()


async def configure_through(node: BridgeProcess, rule: api.SIPDispatchRuleInfo, **trunk_fields: object) -> None:
    """The trunk and rule, through one node's API only: the other node reads them from the shared Redis."""
    async with api_client(node) as client:
        await configure(client, rule, krisp_enabled=False, **trunk_fields)


def node_of(call: Call, nodes: tuple[BridgeProcess, ...]) -> BridgeProcess:
    """The one node whose log shows the call's INVITE."""
    took = [node for node in nodes if node.process.grep_log(f"INVITE from {re.escape(call.caller)} to ")]
    assert len(took) == 1, f"call from {call.caller} reached {len(took)} nodes"
    return took[0]


async def caller_heard_in_room(
    call: Call, prefix: str, others: list[float], livekit_api: api.LiveKitAPI, agents: AgentPool
) -> None:
    """An agent joins the call's room (named by the individual rule: `prefix`, the caller, a suffix) and hears the
    caller's tone, at least 10 dB above every other call's."""
    call.room = await wait_for_room(livekit_api, f"{prefix}_{call.caller}_", within=60)
    await wait_for_participant(livekit_api, call.room, call.identity, within=60)
    await agents.join(call.room, "agent", tone=AGENT_TONE)
    deadline = time.monotonic() + 60
    while True:
        report = await agents.tone(call.room, call.identity, call.tone, others)
        if report.rms_dbfs > -40 and report.margin_db >= 10:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"call from {call.caller}: no clear {call.tone:.0f} Hz in the room ({report})")
        await asyncio.sleep(0.5)


async def talk(calls: list[Call], prefix: str, livekit_api: api.LiveKitAPI, agents: AgentPool) -> None:
    """Every call's audio reaches its room (each caller has its own tone, so a crossed call would show)."""
    tones = [call.tone for call in calls]
    await asyncio.gather(
        *(caller_heard_in_room(c, prefix, [t for t in tones if t != c.tone], livekit_api, agents) for c in calls)
    )


async def hang_up(calls: list[Call], livekit_api: api.LiveKitAPI) -> None:
    """Removing each participant makes its node hang up; the BYE reaches the phone through Kamailio (the route set
    the INVITE recorded), and the phone's sipp exits cleanly."""
    for call in calls:
        await livekit_api.room.remove_participant(api.RoomParticipantIdentity(room=call.room, identity=call.identity))
    for call in calls:
        (await call.sipp).check()


async def wait_for_flags(front: KamailioFront, port: int, state: str, within: float) -> float:
    """Seconds until kamcmd shows the node on `port` in `state` (a flag letter)."""
    start = time.monotonic()
    while not (flags := await front.node_flags())[port].startswith(state):
        assert time.monotonic() - start < within, f"node {port} not {state} after {within} s: {flags}"
        await asyncio.sleep(0.1)
    return time.monotonic() - start


async def test_calls_spread_over_both_nodes_and_leave_a_dead_one(
    tmp_path: Path,
    nodes: tuple[BridgeProcess, BridgeProcess],
    phones: Phones,
    livekit_api: api.LiveKitAPI,
    agents: AgentPool,
    tmp_room: str,
) -> None:
    """Six calls at once, each answering a digest challenge, land on both nodes, each with the caller's audio in its
    room. After one node is killed, the probes alone mark it inactive, and the next three calls (at least one of
    which hashes to the dead node) all land on the survivor."""
    node_a, node_b = nodes
    prefix = f"{tmp_room}-"
    await configure_through(node_a, individual(prefix), auth_username=AUTH[0], auth_password=AUTH[1])
    ports = [node_a.sip_port, node_b.sip_port]
    settings = {"PING_INTERVAL": PING_INTERVAL, "NODE_TIMEOUT": NODE_TIMEOUT_MS}
    with KamailioFront(tmp_path / "kamailio", ports, **settings) as front:
        assert all(flags.startswith("A") for flags in (await front.node_flags()).values())

        first = await phones.dial(front.port, range(6), auth=AUTH)
        await talk(first, prefix, livekit_api, agents)
        split = [sum(node_of(call, nodes) is node for call in first) for node in nodes]
        assert all(split), f"calls per node: {split}"
        assert [node.metrics()["sipbridge_active_calls"] for node in nodes] == split
        await hang_up(first, livekit_api)

        os.killpg(node_a.process.pid, signal.SIGKILL)  # gone without a word, as in a crash or a lost machine
        detected = await wait_for_flags(front, node_a.sip_port, "I", within=PING_INTERVAL + 10)
        assert (await front.node_flags())[node_b.sip_port].startswith("A")
        assert front.log_lines(f"bridge node down: sip:{LOOPBACK}:{node_a.sip_port}")

        later = await phones.dial(front.port, range(6, 9), auth=AUTH)
        await talk(later, prefix, livekit_api, agents)
        assert [node_of(call, nodes) for call in later] == [node_b] * 3
        assert node_b.metrics()["sipbridge_active_calls"] == 3
        await hang_up(later, livekit_api)
        print(f"probing marked the killed node inactive {detected:.1f} s after SIGKILL")


async def test_an_invite_to_a_node_that_just_died_goes_to_the_other(
    tmp_path: Path,
    nodes: tuple[BridgeProcess, BridgeProcess],
    phones: Phones,
    livekit_server: LiveKitServer,
    tmp_room: str,
) -> None:
    """Before any probe notices, the hash still picks the dead node for one of two new calls: that INVITE gets
    no answer within NODE_TIMEOUT (the shipped 2 s), Kamailio marks the node inactive and sends the INVITE to the
    other node. Probes are made rare here so that only this failover can notice the death."""
    node_a, node_b = nodes
    await configure_through(node_b, direct(tmp_room))
    key, secret = livekit_server.api_key, livekit_server.api_secret
    async with TestParticipant(livekit_server.ws_url, key, secret, tmp_room, "agent") as agent:
        await agent.publish_tone(AGENT_TONE)  # the node answers a call when audio from the room reaches it
        with KamailioFront(tmp_path / "kamailio", [node_a.sip_port, node_b.sip_port], PING_INTERVAL=600) as front:
            os.killpg(node_a.process.pid, signal.SIGKILL)
            started = time.monotonic()
            calls = await phones.dial(front.port, range(2), hold_ms=1000)
            ended = []
            # Each phone hangs up itself after 1 s on the line: its BYE reaches the node through Kamailio.
            for result in asyncio.as_completed([call.sipp for call in calls]):
                (await result).check()
                ended.append(time.monotonic() - started)
            assert [node_of(call, nodes) for call in calls] == [node_b] * 2
            dead, live = f"sip:{LOOPBACK}:{node_a.sip_port}", f"sip:{LOOPBACK}:{node_b.sip_port}"
            marked = front.log_lines(f"node {dead} did not answer; marked inactive")
            assert len(marked) == 1, "one of the two calls (see CALL_ID) hashes to the dead node and fails over"
            assert len(front.log_lines(f"failed over -> {live}")) == 1
            assert front.log_lines(f"bridge node down: {dead}")
            assert (await front.node_flags())[node_a.sip_port].startswith("I")
    print(f"after SIGKILL, the direct call ended at {ended[0]:.1f} s, the failed-over one at {ended[1]:.1f} s")


async def test_a_draining_node_passes_new_calls_to_the_other(
    tmp_path: Path,
    redis_server: RedisServer,
    livekit_server: LiveKitServer,
    phones: Phones,
    livekit_api: api.LiveKitAPI,
    tmp_room: str,
) -> None:
    """A node told to stop (SIGTERM) keeps its calls but refuses new ones with 503 while it still answers probes:
    Kamailio passes such a call to the next node (the 5xx failover), and the draining node's call goes on."""
    key, secret = livekit_server.api_key, livekit_server.api_secret
    with (
        two_nodes(tmp_path, livekit_server, redis_server, drain_timeout=60) as nodes,
        KamailioFront(tmp_path / "kamailio", [node.sip_port for node in nodes]) as front,
    ):
        await configure_through(nodes[0], direct(tmp_room))
        async with TestParticipant(livekit_server.ws_url, key, secret, tmp_room, "agent") as agent:
            await agent.publish_tone(AGENT_TONE)
            [held] = await phones.dial(front.port, range(1))
            held.room = tmp_room
            await wait_for_call_status(livekit_api, tmp_room, held.identity, "active")
            draining = node_of(held, nodes)
            other = nodes[1] if draining is nodes[0] else nodes[0]
            os.kill(draining.process.pid, signal.SIGTERM)
            [new] = await phones.dial(front.port, range(3, 4), hold_ms=1000)  # hashes like the held call
            (await new.sipp).check()
            assert node_of(new, nodes) is other
            refused = rf"INVITEs refused from .*: 503 \(the node is draining\), Call-ID {re.escape(CALL_ID.format(3))}"
            assert draining.process.grep_log(refused)
            assert front.log_lines(f"failed over -> sip:{LOOPBACK}:{other.sip_port}")
            assert not front.log_lines("marked inactive"), "a node that answers is not marked inactive"
            await hang_up([held], livekit_api)  # the draining node still held its call, and ends it now
