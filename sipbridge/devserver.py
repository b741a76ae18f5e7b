"""A local livekit-server in dev mode beside the bridge, for a newcomer who has configured no LiveKit server.

Only used when ``ws_url`` is not configured. If something already listens on the dev port it is taken to be a
LiveKit server and used as it is; otherwise the ``livekit-server`` binary (PATH, or the cache that
``scripts/install-peers`` fills) is started with the bridge's API key and secret and stopped with the bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)
START_TIMEOUT = 20.0


def bin_dir() -> Path:
    return Path(os.environ.get("SIPBRIDGE_BIN_DIR") or Path.home() / ".cache" / "sipbridge" / "bin")


def find_livekit_server() -> Path | None:
    found = shutil.which("livekit-server")
    if found:
        return Path(found)
    cached = bin_dir() / "livekit-server"
    return cached if cached.is_file() and os.access(cached, os.X_OK) else None


async def _listening(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class DevLiveKitServer:
    def __init__(self, ws_url: str, api_key: str, api_secret: str, log_path: Path) -> None:
        url = urlparse(ws_url)
        self.host = url.hostname or "localhost"
        self.port = url.port or 7880
        self.api_key = api_key
        self.api_secret = api_secret
        self.log_path = log_path
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> str:
        """Make sure a LiveKit server answers on the dev URL; return a line saying which one it is."""
        if await _listening(self.host, self.port):
            return f"using the LiveKit server already listening on {self.host}:{self.port}"
        binary = find_livekit_server()
        if binary is None:
            return (
                f"no LiveKit server configured (ws_url) and no livekit-server binary found: calls cannot join rooms "
                f"until one listens on {self.host}:{self.port} (install one with scripts/install-peers)"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = await asyncio.to_thread(open, self.log_path, "ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                str(binary),
                "--dev",
                "--bind",
                "127.0.0.1",
                "--config-body",
                f"port: {self.port}",
                "--keys",
                f"{self.api_key}: {self.api_secret}",
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        finally:
            out.close()
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        while not await _listening(self.host, self.port):
            if self._process.returncode is not None or asyncio.get_running_loop().time() > deadline:
                await self.stop()
                raise RuntimeError(f"livekit-server did not start (see {self.log_path})")
            await asyncio.sleep(0.2)
        return f"started livekit-server --dev on ws://{self.host}:{self.port} (log: {self.log_path})"

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
