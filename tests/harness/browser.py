"""A real headless Chromium driven over the DevTools protocol (no Selenium or Playwright: a WebSocket and JSON).

`HeadlessBrowser` starts ``chromium-headless-shell`` (or ``chromium --headless``) with a throw-away profile and
opens one tab: `goto(url)` waits for the page's load event, `evaluate` runs an expression in the page and returns
its value, `screenshot` saves the whole page as PNG.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import signal
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from .binaries import find_binary, require_binary

_DEVTOOLS = re.compile(rb"DevTools listening on (ws://\S+)")


class HeadlessBrowser:
    def __init__(self, profile: Path, width: int = 1400, height: int = 900) -> None:
        self.profile = profile
        self.width, self.height = width, height
        self._process: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._session = ""
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        binary = find_binary("chromium-headless-shell") or require_binary("chromium")
        self._process = await asyncio.create_subprocess_exec(
            str(binary), "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        assert self._process.stderr is not None
        url = await asyncio.wait_for(self._devtools_url(self._process.stderr), 30)
        self._http = aiohttp.ClientSession()
        self._socket = await self._http.ws_connect(url, max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        self._session = attached["sessionId"]
        await self.send("Page.enable")
        await self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                        deviceScaleFactor=1, mobile=False)  # fmt: skip
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None and self._process.returncode is None:
            # First, and its whole group: its helpers hold its stderr open, and its end closes the socket.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            await self._process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._http is not None:
            await self._http.close()

    @staticmethod
    async def _devtools_url(stderr: asyncio.StreamReader) -> str:
        while line := await stderr.readline():
            found = _DEVTOOLS.search(line)
            if found:
                return found.group(1).decode()
        raise AssertionError("Chromium exited without opening its DevTools port")

    async def _read(self) -> None:
        assert self._socket is not None
        async for frame in self._socket:
            message = json.loads(frame.data)
            waiter = self._pending.pop(message.get("id", -1), None)
            if waiter is not None:
                if "error" in message:
                    waiter.set_exception(AssertionError(f"DevTools: {message['error']}"))
                else:
                    waiter.set_result(message.get("result", {}))
            elif "method" in message:
                self._events.put_nowait(message)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        assert self._socket is not None
        call_id = next(self._ids)
        request: dict[str, Any] = {"id": call_id, "method": method, "params": params}
        if self._session and not method.startswith("Target."):
            request["sessionId"] = self._session
        waiter = asyncio.get_running_loop().create_future()
        self._pending[call_id] = waiter
        await self._socket.send_str(json.dumps(request))
        return await asyncio.wait_for(waiter, 30)

    async def goto(self, url: str) -> None:
        """Open `url` and wait for its load event."""
        await self._drain_events()
        await self.send("Page.navigate", url=url)
        await self.wait_loaded()

    async def wait_loaded(self) -> None:
        while (await asyncio.wait_for(self._events.get(), 30)).get("method") != "Page.loadEventFired":
            pass

    async def _drain_events(self) -> None:
        while not self._events.empty():
            self._events.get_nowait()

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"in the page: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, path: Path) -> None:
        """The whole page, however long, as PNG."""
        metrics = await self.send("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": max(self.width, size["width"]), "height": size["height"], "scale": 1}
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)
        await asyncio.to_thread(_save, path, base64.b64decode(shot["data"]))


def _save(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
