"""A TCP relay between a client under test and a server, which a test can cut: a network failure or a load
balancer dropping connections, on loopback.

It runs on the test's event loop. `sever()` aborts every connection through it (both sides see a reset), as a
broken network path does; `hold()` makes new connections wait, accepted but not yet relayed, until `release()`
(a path that is back only later); `connections` counts the connections accepted, and `wait_connections(n)` waits
for the n-th, so a test knows the client has noticed a cut and is trying again without timing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

from .ports import LOOPBACK

_CHUNK = 65536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._released = asyncio.Event()
        self._released.set()
        self._changed = asyncio.Event()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def ws_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0)

    def sever(self) -> None:
        """Cuts every connection now open (a reset both ways); later ones are relayed again, or held."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def hold(self) -> None:
        """New connections are accepted but wait, unrelayed, until `release()`."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    async def wait_connections(self, count: int, within: float = 60.0) -> None:
        """Waits until `count` connections have been accepted since the start."""
        try:
            async with asyncio.timeout(within):
                while self.connections < count:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"{self.connections} connections through the proxy, not {count}") from None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.sever()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._changed.set()
        self._writers.add(client_writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._released.wait()
            if client_writer not in self._writers:  # severed while held
                return
            server_reader, server_writer = await asyncio.open_connection(*self.target)
            self._writers.add(server_writer)
            await asyncio.gather(
                _pipe(client_reader, server_writer), _pipe(server_reader, client_writer), return_exceptions=True
            )
            self._writers.discard(server_writer)
        except OSError:
            client_writer.transport.abort()
        finally:
            self._writers.discard(client_writer)
            self._tasks.discard(task)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies until either side ends; then ends the other side too (an abort stays an abort)."""
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()
