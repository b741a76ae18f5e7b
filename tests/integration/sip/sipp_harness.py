"""Helpers for interop against real sipp processes on loopback with free ports."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from harness.ports import free_tcp_udp_port

from sipbridge.sip import Endpoint, InboundLeg

SCENARIOS = Path(__file__).resolve().parents[2] / "sipp"


def free_port() -> int:
    """A port free for both UDP and TCP right now (sipp and our endpoint each need one)."""
    return free_tcp_udp_port()


def _in_use(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


async def wait_bound(port: int, *, udp: bool = True, tcp: bool = False, limit: float = 20.0) -> None:
    """Wait until a started process has bound ``port`` for the given transports: readiness is observed, not
    guessed with a sleep, so a slow machine only makes the test slower."""
    kinds = [kind for kind, wanted in ((socket.SOCK_DGRAM, udp), (socket.SOCK_STREAM, tcp)) if wanted]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not all(_in_use(port, kind) for kind in kinds):
        if loop.time() > deadline:
            raise TimeoutError(f"nothing bound port {port}")
        await asyncio.sleep(0.05)


@dataclass
class SippResult:
    returncode: int
    errors: str

    def check(self) -> None:
        assert self.returncode == 0, f"sipp exited {self.returncode}:\n{self.errors[-3000:]}"


class Sipp:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.media_port = free_port()
        self.procs: list[asyncio.subprocess.Process] = []

    async def run(
        self,
        scenario: str,
        remote_port: int | None = None,
        *,
        transport: str = "u1",
        calls: int = 1,
        extra: tuple[str, ...] = (),
        limit: float = 40.0,
    ) -> SippResult:
        """Run sipp to completion: as UAC when ``remote_port`` is given, else as UAS waiting on ``self.port``."""
        error_file = self.tmp_path / f"{Path(scenario).stem}-errors.log"
        source = ("-sn", scenario) if scenario in ("uac", "uas") else ("-sf", str(SCENARIOS / scenario))
        args = [
            *source, "-i", "127.0.0.1", "-p", str(self.port), "-mp", str(self.media_port), "-t", transport,
            "-m", str(calls), "-timeout", f"{int(limit)}s", "-timeout_error", "-nostdin", "-trace_err",
            "-error_file", str(error_file), *extra,
        ]  # fmt: skip
        if remote_port is not None:
            args.insert(0, f"127.0.0.1:{remote_port}")
        proc = await asyncio.create_subprocess_exec(
            "sipp", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=self.tmp_path
        )
        self.procs.append(proc)
        _, stderr = await asyncio.wait_for(proc.communicate(), limit + 20)
        errors = stderr.decode(errors="replace")
        if error_file.exists():
            errors += error_file.read_text(errors="replace")
        return SippResult(proc.returncode or 0, errors)

    async def start(self, scenario: str, **kw: object) -> asyncio.Task[SippResult]:
        """Start a sipp UAS in the background and give it a moment to bind."""
        task = asyncio.ensure_future(self.run(scenario, **kw))  # type: ignore[arg-type]
        tcp = kw.get("transport") == "t1"
        await wait_bound(self.port, udp=not tcp, tcp=tcp)
        return task

    def kill(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()


Handler = Callable[[InboundLeg], Awaitable[None]]
EndpointFactory = Callable[..., Awaitable[Endpoint]]
