"""Test agents spread over worker processes, for tests with many rooms at once.

One process of the livekit rtc SDK hands every FFI event to every room and audio stream it holds, so twenty
agents in the test process fall behind real time on a small machine and the SDK then fails to open some of
their audio streams. Here each worker process holds a few `TestParticipant`s; the test talks to the workers
with one JSON line per request and gets the tone measurement back, not the audio.

Run as ``python -m harness.agent_pool`` (with ``tests/`` on the path) it is a worker.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livekit import rtc
from livekit.rtc.participant import PublishTrackError

from .audio import rms_dbfs, spectral_peaks, tone_margin
from .participant import RATE, TestParticipant

TESTS_DIR = Path(__file__).resolve().parent.parent
JOIN_ATTEMPTS = 3


@dataclass(frozen=True)
class ToneReport:
    """The last seconds an agent heard from one participant: level, the tone's margin over other tones, peaks."""

    rms_dbfs: float
    margin_db: float
    peaks: str


class AgentPool:
    """`workers` processes, each holding the agents assigned to it round-robin."""

    def __init__(self, url: str, api_key: str, api_secret: str, workers: int) -> None:
        self._env = {**os.environ, "LIVEKIT_URL": url, "LIVEKIT_API_KEY": api_key, "LIVEKIT_API_SECRET": api_secret}
        self._count = workers
        self._workers: list[_Worker] = []
        self._where: dict[str, _Worker] = {}
        self._turns = itertools.count()

    async def start(self) -> None:
        for _ in range(self._count):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "harness.agent_pool", cwd=TESTS_DIR, env=self._env,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            self._workers.append(_Worker(proc))

    async def join(self, room: str, identity: str, tone: float, *, listen: bool = True) -> None:
        """An agent `identity` joins `room` and publishes a `tone` Hz microphone track; with `listen` False it
        subscribes to nobody, except for the seconds a `tone()` measurement samples."""
        worker = self._workers[next(self._turns) % len(self._workers)]
        self._where[room] = worker
        await worker.ask(op="join", room=room, identity=identity, tone=tone, listen=listen)

    async def leave(self, room: str) -> None:
        """The agent in `room` leaves it (a test cycling through many rooms keeps only the live ones)."""
        await self._where.pop(room).ask(op="leave", room=room)

    async def tone(
        self, room: str, speaker: str, freq: float, others: list[float], seconds: float = 2.0, within: float = 60.0
    ) -> ToneReport:
        """What the agent in `room` heard from `speaker` over the last `seconds`, measured at `freq`; an agent that
        does not listen subscribes for that long (`TestParticipant.sample`), waiting up to `within` seconds for the
        speaker's track and its audio."""
        reply = await self._where[room].ask(
            op="tone", room=room, speaker=speaker, freq=freq, others=others, seconds=seconds, within=within
        )
        return ToneReport(reply["rms_dbfs"], reply["margin_db"], reply["peaks"])

    async def close(self) -> None:
        for worker in self._workers:
            await worker.close()


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self._seq = itertools.count()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def ask(self, **request: Any) -> dict[str, Any]:
        seq = next(self._seq)
        reply = self._pending[seq] = asyncio.get_running_loop().create_future()
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"seq": seq, **request}).encode() + b"\n")
        await self._proc.stdin.drain()
        result = await reply
        if "error" in result:
            raise AssertionError(f"agent worker: {result['error']}")
        return result

    async def _read(self) -> None:
        assert self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            reply = json.loads(line)
            future = self._pending.pop(reply["seq"], None)
            if future is not None and not future.done():
                future.set_result(reply)
        for future in self._pending.values():
            if not future.done():
                future.set_result({"error": f"worker exited ({self._proc.returncode})"})

    async def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), 20)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()
        await self._reader


async def _serve() -> None:
    """The worker: agents by room, requests from stdin, one reply line per request on stdout."""
    url, key, secret = (os.environ[name] for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"))
    agents: dict[str, TestParticipant] = {}
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    async def handle(request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] == "join":
            # A loaded livekit-server may time out an agent's signalling connection or its track publication; the
            # agent is the test's helper, not the subject, so it leaves and joins again, as a real client would.
            for attempt in range(JOIN_ATTEMPTS):
                agent = TestParticipant(
                    url, key, secret, request["room"], request["identity"], listen=request["listen"]
                )
                try:
                    await agent.connect()
                    await agent.publish_tone(request["tone"])
                    break
                except (rtc.ConnectError, PublishTrackError) as failure:
                    await agent.disconnect()
                    if attempt == JOIN_ATTEMPTS - 1:
                        raise
                    print(f"agent in {request['room']}: {failure!r}, joining again", file=sys.stderr, flush=True)
                    await asyncio.sleep(1)
            agents[request["room"]] = agent
            return {}
        if request["op"] == "leave":
            await agents.pop(request["room"]).disconnect()
            return {}
        agent = agents[request["room"]]
        if agent.listen:
            heard = agent.heard(request["speaker"])
        else:
            heard = await agent.sample(request["speaker"], request["seconds"], request["within"])
        tail = heard[-round(request["seconds"] * RATE) :]
        level = rms_dbfs(tail)
        if level < -90:
            return {"rms_dbfs": level, "margin_db": math.nan, "peaks": "no audio"}
        margin = tone_margin(tail, RATE, request["freq"], request["others"])
        return {"rms_dbfs": level, "margin_db": margin, "peaks": spectral_peaks(tail, RATE)}

    async def answer(request: dict[str, Any]) -> None:
        try:
            reply = await handle(request)
        except Exception as exc:  # reported to the test, which fails with it
            reply = {"error": repr(exc)}
        sys.stdout.write(json.dumps({"seq": request["seq"], **reply}) + "\n")
        sys.stdout.flush()

    tasks: set[asyncio.Task[None]] = set()
    while line := await stdin.readline():
        task = asyncio.create_task(answer(json.loads(line)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks, return_exceptions=True)
    for agent in agents.values():
        await agent.disconnect()


if __name__ == "__main__":
    asyncio.run(_serve())
