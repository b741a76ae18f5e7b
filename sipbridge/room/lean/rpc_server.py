"""Answering room RPC the way LiveKit's SDKs do, over data packets (RPC version 1).

A request (`rpc_request`, from the caller's `perform_rpc`) is acknowledged at once (`rpc_ack`), so the caller knows
someone is working on it, then answered (`rpc_response`) with the handler's payload or an error: the method's own
`RpcError`, UNSUPPORTED_METHOD when nobody registered it, UNSUPPORTED_VERSION for another protocol version,
RESPONSE_TIMEOUT when the handler outlives the caller's deadline, RESPONSE_PAYLOAD_TOO_LARGE, and
APPLICATION_ERROR for any other exception. We announce no data-stream RPC support (client protocol 0), so callers
use version 1 packets with us.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from livekit.protocol import models

from sipbridge.room.rpc import MAX_PAYLOAD_BYTES, RpcError, RpcHandler, RpcInvocation

RPC_VERSION = 1
DEFAULT_RESPONSE_TIMEOUT = 10.0
"""Seconds a caller that names no timeout waits (the SDKs' default)."""

SendPacket = Callable[[models.DataPacket], None]


class RpcServer:
    def __init__(self, send: SendPacket, log: logging.LoggerAdapter[logging.Logger]) -> None:
        self._send = send
        self._log = log
        self._handlers: dict[str, RpcHandler] = {}
        self._running: set[asyncio.Task[None]] = set()

    def register(self, method: str, handler: RpcHandler) -> None:
        self._handlers[method] = handler

    def on_request(self, caller_identity: str, request: models.RpcRequest) -> None:
        """Acknowledges `request` now and answers it once its handler is done."""
        ack = models.DataPacket(rpc_ack=models.RpcAck(request_id=request.id))
        self._deliver(caller_identity, ack)
        task = asyncio.create_task(self._answer(caller_identity, request))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def close(self) -> None:
        """Stops the handlers still running; their callers get no answer (we are leaving the room)."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _answer(self, caller_identity: str, request: models.RpcRequest) -> None:
        response = models.RpcResponse(request_id=request.id)
        try:
            response.payload = await self._run(caller_identity, request)
        except RpcError as error:
            response.error.CopyFrom(models.RpcError(code=error.code, message=error.message, data=error.data))
        self._deliver(caller_identity, models.DataPacket(rpc_response=response))

    def _deliver(self, caller_identity: str, packet: models.DataPacket) -> None:
        """Sends `packet` reliably to the caller only."""
        packet.kind = models.DataPacket.RELIABLE
        packet.destination_identities.append(caller_identity)
        try:
            self._send(packet)
        except ConnectionError as exc:  # we are leaving: the caller learns it from the room
            self._log.debug("RPC %s not sent: %s", packet.WhichOneof("value"), exc)

    async def _run(self, caller_identity: str, request: models.RpcRequest) -> str:
        if request.version != RPC_VERSION:
            raise RpcError.built_in(RpcError.UNSUPPORTED_VERSION)
        handler = self._handlers.get(request.method)
        if handler is None:
            raise RpcError.built_in(RpcError.UNSUPPORTED_METHOD)
        timeout = request.response_timeout_ms / 1000 or DEFAULT_RESPONSE_TIMEOUT
        invocation = RpcInvocation(request.id, caller_identity, request.method, request.payload, timeout)
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                payload = await handler(invocation)
        except RpcError:
            raise
        except TimeoutError:
            if not deadline.expired():
                self._log.exception("RPC handler for %r timed out by itself", request.method)
                raise RpcError.built_in(RpcError.APPLICATION_ERROR) from None
            raise RpcError.built_in(RpcError.RESPONSE_TIMEOUT) from None
        except Exception:
            self._log.exception("RPC handler for %r failed", request.method)
            raise RpcError.built_in(RpcError.APPLICATION_ERROR) from None
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            raise RpcError.built_in(RpcError.RESPONSE_PAYLOAD_TOO_LARGE)
        return payload
