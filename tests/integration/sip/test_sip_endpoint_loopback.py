"""Two real Endpoints on loopback sockets (UDP and TCP): the asyncio edge end to end."""

from __future__ import annotations

import asyncio

import pytest

from sipbridge.sip.endpoint import CallFailed, Endpoint, InboundCall
from sipbridge.sip.events import CallEnded, DtmfReceived
from sipbridge.sip.offer_answer import MediaSession
from sipbridge.sip.settings import SipSettings


def settings() -> SipSettings:
    return SipSettings(bind_host="127.0.0.1", port=0)


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_call_dtmf_and_hangup(transport: str) -> None:
    received: list[str] = []
    ended: asyncio.Future[CallEnded] = asyncio.get_running_loop().create_future()

    async def handler(call: InboundCall) -> None:
        assert call.offer is not None and call.from_.uri is not None
        await call.ring()
        media = await call.answer(MediaSession("127.0.0.1", 30000))
        assert media.codec.name == "PCMU"
        async for event in call.events():
            if isinstance(event, DtmfReceived):
                received.append(event.digit)
            if isinstance(event, CallEnded):
                ended.set_result(event)

    callee = Endpoint(settings(), handler)
    caller = Endpoint(settings())
    await callee.start()
    await caller.start()
    try:
        call = await caller.place_call(
            f"sip:bob@127.0.0.1:{callee.port}", MediaSession("127.0.0.1", 30002, codecs=["PCMU"]),
            from_uri="sip:alice@127.0.0.1", transport=transport,
        )  # fmt: skip
        media = await asyncio.wait_for(call.wait_answered(), 5)
        assert media.remote_port == 30000
        await call.send_dtmf("7")
        await asyncio.sleep(0.1)
        result = await asyncio.wait_for(call.bye(), 5)
        assert result.reason == "bye"
        remote_end = await asyncio.wait_for(ended, 5)
        assert remote_end.by_remote and received == ["7"]
    finally:
        await caller.close()
        await callee.close()


async def test_rejection_and_handler_failure_are_contained() -> None:
    async def handler(call: InboundCall) -> None:
        if call.to.uri is not None and "busy" in str(call.to.uri):
            await call.reject(486)
            return
        raise RuntimeError("call flow bug")

    callee = Endpoint(settings(), handler)
    caller = Endpoint(settings())
    await callee.start()
    await caller.start()
    try:
        for user, status in (("busy", 486), ("crash", 500)):
            call = await caller.place_call(
                f"sip:{user}@127.0.0.1:{callee.port}", MediaSession("127.0.0.1", 30004), from_uri="sip:a@127.0.0.1"
            )
            with pytest.raises(CallFailed) as info:
                await asyncio.wait_for(call.wait_answered(), 5)
            assert info.value.status == status
    finally:
        await caller.close()
        await callee.close()
