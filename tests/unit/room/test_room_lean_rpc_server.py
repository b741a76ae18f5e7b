"""Room RPC answered the way LiveKit's SDKs answer it: an ack at once, then the response or a built-in error."""

from __future__ import annotations

import asyncio
import logging

import pytest
from livekit.protocol import models

from sipbridge.room.lean.rpc_server import RpcServer
from sipbridge.room.rpc import MAX_PAYLOAD_BYTES, RpcError, RpcInvocation


class Outbox:
    def __init__(self) -> None:
        self.packets: list[models.DataPacket] = []
        self.changed = asyncio.Event()

    def send(self, packet: models.DataPacket) -> None:
        self.packets.append(packet)
        self.changed.set()

    async def response(self) -> models.RpcResponse:
        while not any(p.HasField("rpc_response") for p in self.packets):
            self.changed.clear()
            await self.changed.wait()
        (packet,) = [p for p in self.packets if p.HasField("rpc_response")]
        assert list(packet.destination_identities) == ["agent"] and packet.kind == models.DataPacket.RELIABLE
        return packet.rpc_response


def _server(outbox: Outbox) -> RpcServer:
    return RpcServer(outbox.send, logging.LoggerAdapter(logging.getLogger("test")))


def _request(
    method: str = "lk.sip.ping", payload: str = "hi", version: int = 1, timeout_ms: int = 10000
) -> models.RpcRequest:
    return models.RpcRequest(
        id="req-1", method=method, payload=payload, response_timeout_ms=timeout_ms, version=version
    )


async def test_a_registered_method_is_acknowledged_then_answered() -> None:
    outbox = Outbox()
    server = _server(outbox)
    seen: list[RpcInvocation] = []

    async def ping(invocation: RpcInvocation) -> str:
        seen.append(invocation)
        return invocation.payload.upper()

    server.register("lk.sip.ping", ping)
    server.on_request("agent", _request())
    assert outbox.packets[0].rpc_ack.request_id == "req-1"  # at once, before the handler runs
    response = await outbox.response()
    assert (response.request_id, response.payload) == ("req-1", "HI")
    assert seen == [RpcInvocation("req-1", "agent", "lk.sip.ping", "hi", 10.0)]


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (_request(method="nobody.registered.this"), 1400, "Method not supported at destination"),
        (_request(version=2), 1404, "Unsupported RPC version"),
    ],
)
async def test_requests_nobody_can_answer_get_the_sdks_built_in_errors(
    request_: models.RpcRequest, code: int, message: str
) -> None:
    outbox = Outbox()
    server = _server(outbox)

    async def ping(invocation: RpcInvocation) -> str:
        return ""

    server.register("lk.sip.ping", ping)
    server.on_request("agent", request_)
    response = await outbox.response()
    assert (response.error.code, response.error.message) == (code, message)


async def test_what_a_handler_raises_reaches_the_caller() -> None:
    outbox = Outbox()
    server = _server(outbox)

    async def refuse(invocation: RpcInvocation) -> str:
        raise RpcError(4001, "no such call", '{"call": "x"}')

    async def crash(invocation: RpcInvocation) -> str:
        raise ValueError("bug")

    async def ramble(invocation: RpcInvocation) -> str:
        return "x" * (MAX_PAYLOAD_BYTES + 1)

    for handler, expected in [
        (refuse, (4001, "no such call", '{"call": "x"}')),
        (crash, (1500, "Application error in method handler", "")),
        (ramble, (1504, "Response payload too large", "")),
    ]:
        outbox.packets.clear()
        server.register("m", handler)
        server.on_request("agent", _request(method="m"))
        error = (await outbox.response()).error
        assert (error.code, error.message, error.data) == expected


async def test_a_handler_outliving_the_callers_deadline_answers_response_timeout() -> None:
    outbox = Outbox()
    server = _server(outbox)

    async def stuck(invocation: RpcInvocation) -> str:
        await asyncio.Event().wait()
        return ""

    server.register("m", stuck)
    server.on_request("agent", _request(method="m", timeout_ms=10))
    assert (await outbox.response()).error.code == 1502


async def test_leaving_stops_running_handlers_without_answering() -> None:
    outbox = Outbox()
    server = _server(outbox)
    started = asyncio.Event()

    async def stuck(invocation: RpcInvocation) -> str:
        started.set()
        await asyncio.Event().wait()
        return ""

    server.register("m", stuck)
    server.on_request("agent", _request(method="m"))
    await started.wait()
    await server.close()
    assert [p.WhichOneof("value") for p in outbox.packets] == ["rpc_ack"]
