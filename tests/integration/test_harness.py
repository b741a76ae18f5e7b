"""The harness against real peers: the servers it starts serve, lk reaches them, failures are readable."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from harness.audio import dominant_frequency, rms_dbfs, trim_silence
from harness.bridge import api_client
from harness.lk import LkRunner
from harness.participant import RATE, TestParticipant
from harness.ports import free_tcp_udp_port, free_udp_port, free_udp_range
from harness.processes import LiveKitServer, ManagedProcess, ProcessFailed, RedisServer, udp_bound
from livekit import api

pytestmark = pytest.mark.integration


def test_redis_server_is_empty_and_in_memory(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.ping()
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        client.close()


def test_livekit_server_on_redis_registers_its_node(
    livekit_server_redis: LiveKitServer, redis_server: RedisServer
) -> None:
    started = livekit_server_redis.grep_log(r"starting LiveKit server")
    assert started, livekit_server_redis.log_path
    node_id = re.search(r'"nodeID": "([^"]+)"', started[0])
    assert node_id is not None
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        assert node_id.group(1) in client.hkeys("nodes")
    finally:
        client.close()


async def test_livekit_server_accepts_its_keys_only(livekit_server: LiveKitServer, tmp_room: str) -> None:
    async with api_client(livekit_server) as client:
        room = await client.room.create_room(api.CreateRoomRequest(name=tmp_room))
        assert room.name == tmp_room
    async with api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, "wrong" * 8) as client:
        with pytest.raises(api.TwirpError):
            await client.room.list_rooms(api.ListRoomsRequest())


def _participant(server: LiveKitServer, room: str, identity: str) -> TestParticipant:
    return TestParticipant(server.ws_url, server.api_key, server.api_secret, room, identity)


async def test_participants_hear_each_others_tone(livekit_server: LiveKitServer, tmp_room: str) -> None:
    level = -20.0
    async with (
        _participant(livekit_server, tmp_room, "low") as low,
        _participant(livekit_server, tmp_room, "high") as high,
    ):
        await low.publish_tone(440.0, level)
        await high.publish_tone(1000.0, level)
        for listener, speaker, freq in ((low, "high", 1000.0), (high, "low", 440.0)):
            # The last second, once a second and a half arrived: past connection start-up.
            heard = trim_silence((await listener.wait_heard(speaker, 1.5))[-RATE:], RATE)
            assert heard.size >= RATE * 0.9, f"{listener.identity} heard {heard.size} sounding samples"
            assert dominant_frequency(heard, RATE) == pytest.approx(freq, abs=5.0)
            assert rms_dbfs(heard) == pytest.approx(level, abs=3.0)


async def test_dtmf_reaches_the_other_participant(livekit_server: LiveKitServer, tmp_room: str) -> None:
    async with (
        _participant(livekit_server, tmp_room, "agent") as agent,
        _participant(livekit_server, tmp_room, "caller") as caller,
    ):
        # Both joined (connect returned), so the server forwards to the caller; no need to wait for it to be
        # announced to the agent.
        for code, digit in ((1, "1"), (11, "#")):
            await agent.publish_dtmf(code, digit)
        received = await caller.wait_dtmf(2)
        assert [(d.code, d.digit, d.sender_identity) for d in received] == [(1, "1", "agent"), (11, "#", "agent")]


def test_lk_room_list_sees_a_created_room(lk: LkRunner, tmp_room: str) -> None:
    lk("room", "create", tmp_room)
    listed = lk("room", "list", "--json")
    assert tmp_room in {room["name"] for room in json.loads(listed.stdout).get("rooms", [])}


def test_lk_sip_commands_work_against_livekit_server_on_redis(
    lk: LkRunner, livekit_server_redis: LiveKitServer, redis_server: RedisServer
) -> None:
    # lk is built against a replacement livekit/protocol (see scripts/install-peers); this catches a
    # replacement that breaks its SIP commands, which is how v1.50.0 failed (stack overflow on create).
    request = {"trunk": {"name": "harness", "numbers": ["+15550100"]}}
    created = lk(
        "sip", "inbound", "create", "trunk.json",
        target=livekit_server_redis,
        input_files={"trunk.json": json.dumps(request)},
    )  # fmt: skip
    found = re.search(r"ST_\w+", created.stdout)
    assert found is not None, created.stdout
    trunk_id = found.group()
    with redis.Redis.from_url(redis_server.url, decode_responses=True) as client:
        try:
            listed = json.loads(lk("sip", "inbound", "list", "--json", target=livekit_server_redis).stdout)
            assert {"sipTrunkId": trunk_id, "name": "harness", "numbers": ["+15550100"]} in listed["items"]
            assert client.hexists("sip_inbound_trunk", trunk_id)
        finally:
            lk("sip", "inbound", "delete", trunk_id, target=livekit_server_redis)
        assert not client.hexists("sip_inbound_trunk", trunk_id)


def test_lk_failure_carries_its_output(lk: LkRunner, livekit_server: LiveKitServer) -> None:
    with pytest.raises(RuntimeError, match="stderr"):
        lk("room", "list", api_key=livekit_server.api_key, api_secret="wrong" * 8)


def test_early_exit_fails_with_log_tail(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "print('configuration rejected', flush=True); raise SystemExit(3)"]
    process = ManagedProcess("failing", argv, tmp_path / "failing.log")
    process.start()
    try:
        with pytest.raises(ProcessFailed, match=r"(?s)exited with status 3.*configuration rejected"):
            process.wait_until(lambda: False, timeout=30.0)
    finally:
        process.stop()


def test_a_process_that_never_gets_ready_is_stopped(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", ["sleep", "60"], tmp_path / "sleeper.log")
    with pytest.raises(ProcessFailed, match="was not listening within"):
        process.start_and_wait(lambda: False, what="listening", timeout=0.2)
    assert not process.running


def test_free_ports_can_be_bound() -> None:
    sip_port = free_tcp_udp_port()
    rtp_start = free_udp_range(20)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind(("127.0.0.1", sip_port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", sip_port))
    rtp = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(20)]
    try:
        for offset, sock in enumerate(rtp):
            sock.bind(("127.0.0.1", rtp_start + offset))
    finally:
        for sock in rtp:
            sock.close()


def test_udp_listener_readiness(tmp_path: Path) -> None:
    port = free_udp_port()
    listener = (
        "import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        f"time.sleep(0.3); s.bind(('127.0.0.1', {port})); time.sleep(60)"
    )
    process = ManagedProcess("udp-listener", [sys.executable, "-c", listener], tmp_path / "udp.log")
    assert not udp_bound("127.0.0.1", port)()
    process.start_and_wait(udp_bound("127.0.0.1", port), what="bound", timeout=30.0)
    process.stop()
    assert not udp_bound("127.0.0.1", port)()


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    )
    process = ManagedProcess("stubborn", [sys.executable, "-c", stubborn], tmp_path / "stubborn.log")
    process.start()
    process.wait_until(lambda: bool(process.grep_log("^up$")), timeout=30.0)
    assert process.stop(grace=0.2) == -9
    assert not process.running


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie awaiting its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_processes_die_with_a_killed_test_runner(tmp_path: Path) -> None:
    runner_script = (
        "import sys, time, pathlib\n"
        f"sys.path.insert(0, {str(Path(__file__).parents[1])!r})\n"
        "from harness.processes import ManagedProcess\n"
        f"p = ManagedProcess('sleeper', ['sleep', '60'], pathlib.Path({str(tmp_path / 's.log')!r}))\n"
        "p.start()\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    runner = subprocess.Popen([sys.executable, "-c", runner_script], stdout=subprocess.PIPE, text=True)
    try:
        assert runner.stdout is not None
        sleeper = int(runner.stdout.readline())
        assert _alive(sleeper)
    finally:
        runner.kill()
        runner.wait()
    deadline = time.monotonic() + 10.0
    while _alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(sleeper), "the peer outlived the killed test runner"
