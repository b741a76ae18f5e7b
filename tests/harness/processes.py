"""Real peer processes for tests: started on free loopback ports, logged to files, always stopped.

Every process runs in its own process group (so a stop reaches anything it spawned), has the kernel send
it SIGKILL if the test runner dies (so a crashed or killed pytest leaves no orphans), and writes stdout and
stderr to one log file whose tail goes into every failure message.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import yaml

from .binaries import require_binary
from .ports import LOOPBACK, free_tcp_port, free_udp_port

Probe = Callable[[], bool]

_PR_SET_PDEATHSIG = 1
_running: set[ManagedProcess] = set()


class ProcessFailed(RuntimeError):
    """A peer process did not start, died early, or misbehaved; the message carries its log tail."""


def _die_with_parent() -> None:
    """Runs in the child before exec: ask the kernel for SIGKILL when the test runner goes away."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    """One peer program under test control: start, wait until ready, read its log, stop for sure."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = [os.fspath(arg) for arg in argv]
        self.log_path = log_path
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def start(self) -> None:
        if self._popen is not None:
            raise ProcessFailed(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"$ {' '.join(self.argv)}\n".encode())
        self._log_file.flush()
        try:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self._cwd,
                start_new_session=True,
                # The death signal fires when the *thread* that forked exits: tie it to the main thread only.
                preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread() else None,
            )
        except OSError:
            self._log_file.close()
            self._log_file = None
            raise
        _running.add(self)

    def start_and_wait(self, probe: Probe, *, what: str = "ready", timeout: float = 30.0) -> None:
        """start(), then wait_until(probe); a process that never gets ready is stopped before the raise."""
        self.start()
        try:
            self.wait_until(probe, what=what, timeout=timeout)
        except BaseException:
            self.stop(grace=2.0)
            raise

    @property
    def pid(self) -> int:
        return self._started().pid

    @property
    def returncode(self) -> int | None:
        """Exit status once the process ended, None while it runs."""
        return self._started().poll()

    @property
    def started(self) -> bool:
        return self._popen is not None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def wait_until(self, probe: Probe, *, what: str = "ready", timeout: float = 30.0) -> None:
        """Poll `probe` until it holds; fail with the log tail if the process dies or never gets there."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise self.failure(f"{self.name} exited with status {self.returncode} before it was {what}")
            if probe():
                return
            if time.monotonic() > deadline:
                raise self.failure(f"{self.name} was not {what} within {timeout:.0f} s")
            time.sleep(0.05)

    def stop(self, grace: float = 5.0, *, sigterms: int = 1) -> int | None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds; returns the exit status.

        `sigterms` > 1 repeats SIGTERM (0.2 s apart, while the process runs) for programs that treat a
        second one as "stop now" instead of a graceful drain.
        """
        popen = self._popen
        if popen is None:
            return None
        try:
            for repeat in range(sigterms):
                if popen.poll() is not None:
                    break
                if repeat:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        popen.wait(timeout=0.2)
                    if popen.poll() is not None:
                        break
                self._signal_group(signal.SIGTERM)
            if popen.poll() is None:
                try:
                    popen.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self._signal_group(signal.SIGKILL)
                    popen.wait(timeout=grace)
            # Children the leader left behind share its group.
            self._signal_group(signal.SIGKILL)
        finally:
            _running.discard(self)
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
        return popen.returncode

    def send_signal(self, signum: signal.Signals) -> None:
        """Signals the process group (e.g. SIGSTOP to freeze a server with its sockets open, SIGCONT after)."""
        self._signal_group(signum)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def grep_log(self, pattern: str | re.Pattern[str]) -> list[str]:
        """Log lines matching the regular expression `pattern` (searched anywhere in the line)."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        return [line for line in self.log_text().splitlines() if regex.search(line)]

    def failure(self, message: str) -> ProcessFailed:
        """An exception for `message` with the log's location and tail, ready to raise."""
        return ProcessFailed(f"{message}\n--- last lines of {self.log_path} ---\n{self.log_tail()}")

    def _started(self) -> subprocess.Popen[bytes]:
        if self._popen is None:
            raise ProcessFailed(f"{self.name} was never started")
        return self._popen

    def _signal_group(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._started().pid, signum)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@atexit.register
def _stop_leftovers() -> None:
    for process in list(_running):
        process.stop(grace=2.0)


def tcp_accepts(host: str, port: int) -> Probe:
    """Probe: something accepts TCP connections on host:port."""

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return probe


def udp_bound(host: str, port: int) -> Probe:
    """Probe: some process has bound UDP host:port (a SIP or RTP listener is up); UDP has no handshake."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    def probe() -> bool:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return True
        return False

    return probe


def http_ok(url: str) -> Probe:
    """Probe: GET `url` answers 200."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    return probe


class RedisServer:
    """A throwaway redis-server on a free loopback port, in memory only."""

    def __init__(self, workdir: Path) -> None:
        self.host = LOOPBACK
        self.port = free_tcp_port()
        workdir.mkdir(parents=True, exist_ok=True)
        argv: list[str | os.PathLike[str]] = [
            require_binary("redis-server"),
            "--bind", self.host,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--logfile", "",
        ]  # fmt: skip
        self.process = ManagedProcess("redis-server", argv, workdir / "redis-server.log")

    @property
    def address(self) -> str:
        """host:port, the form livekit-server's and sipbridge's `redis.address` take."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def start(self) -> None:
        self.process.start_and_wait(self._answers_ping, what="answering PING", timeout=15.0)

    def stop(self) -> None:
        self.process.stop()

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class LiveKitServer:
    """A livekit-server on loopback with fresh API keys, optionally clustered on a RedisServer.

    Mirrors ``livekit-server --dev`` (development mode, loopback only) but on free ports, so several can run
    at once: HTTP/WebSocket on `port`, ICE over one muxed UDP port and one TCP port, loopback candidates on.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        redis: RedisServer | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        log_level: str = "info",
    ) -> None:
        self.host = LOOPBACK
        self.port = free_tcp_port()
        # Its media ports are bound on every interface, for as long as the server lives (and again when it is started
        # again): harness.ports hands out ports below the ephemeral range, free on every interface.
        self.rtc_tcp_port = free_tcp_port()
        self.rtc_udp_port = free_udp_port()
        self.api_key = api_key or f"API{secrets.token_hex(6)}"
        self.api_secret = api_secret or secrets.token_urlsafe(32)
        self.redis = redis
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "livekit.yaml"
        self.config_path.write_text(yaml.safe_dump(self._config(log_level), sort_keys=False))
        argv: list[str | os.PathLike[str]] = [require_binary("livekit-server"), "--config", self.config_path]
        self.process = ManagedProcess("livekit-server", argv, workdir / "livekit-server.log")

    def _config(self, log_level: str) -> dict[str, object]:
        config: dict[str, object] = {
            "port": self.port,
            "bind_addresses": [self.host],
            "development": True,
            "keys": {self.api_key: self.api_secret},
            "logging": {"level": log_level, "json": False},
            "rtc": {
                "tcp_port": self.rtc_tcp_port,
                "udp_port": self.rtc_udp_port,
                "use_external_ip": False,
                "node_ip": self.host,
                "enable_loopback_candidate": True,
            },
        }
        if self.redis is not None:
            config["redis"] = {"address": self.redis.address}
        return config

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def grep_log(self, pattern: str | re.Pattern[str]) -> list[str]:
        return self.process.grep_log(pattern)

    def start(self) -> None:
        """Starts the server (again after `kill()`: same ports, keys and log file)."""
        if self.process.started:
            self.process = ManagedProcess(self.process.name, self.process.argv, self.process.log_path)
        self.process.start_and_wait(http_ok(self.http_url + "/"), what="healthy", timeout=30.0)

    def kill(self) -> None:
        """SIGKILL: the server vanishes without a word to anyone, as in a crash (its rooms go with it)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.stop(sigterms=0)

    def stop(self) -> None:
        # The first SIGTERM makes livekit-server drain, polling every 5 s until participants leave; the
        # second makes it stop at once.
        self.process.stop(sigterms=2)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
