"""Interop with sipp: REFER transfers (accepted with NOTIFY 100/200, and declined) and a Record-Route path."""

from __future__ import annotations

import asyncio

from sipp_harness import EndpointFactory, Sipp

from sipbridge.sip import InboundLeg
from sipbridge.sip.events import TransferProgress
from sipbridge.sip.offer_answer import MediaSession


def transferring(results: list[TransferProgress], seen: list[int]):  # type: ignore[no-untyped-def]
    async def handler(call: InboundLeg) -> None:
        await call.answer(MediaSession("127.0.0.1", 31000))
        results.append(await call.refer("sip:carol@127.0.0.1"))
        await call.bye()
        async for event in call.events():
            if isinstance(event, TransferProgress):
                seen.append(event.status)

    return handler


async def test_refer_accepted_with_notify_progress(sipp: Sipp, endpoint: EndpointFactory) -> None:
    results: list[TransferProgress] = []
    seen: list[int] = []
    ep = await endpoint(transferring(results, seen))
    (await sipp.run("uac_refer_accept.xml", ep.port)).check()
    assert results[0].succeeded and seen == [202, 100, 200]


async def test_refer_declined(sipp: Sipp, endpoint: EndpointFactory) -> None:
    results: list[TransferProgress] = []
    seen: list[int] = []
    ep = await endpoint(transferring(results, seen))
    (await sipp.run("uac_refer_reject.xml", ep.port)).check()
    assert results[0].final and not results[0].succeeded and results[0].status == 603


async def test_bye_follows_record_route_path(sipp: Sipp, endpoint: EndpointFactory) -> None:
    async def handler(call: InboundLeg) -> None:
        await call.answer(MediaSession("127.0.0.1", 31000))
        await call.bye()

    ep = await endpoint(handler)
    (await sipp.run("uac_record_route.xml", ep.port)).check()


async def test_our_ack_and_bye_follow_record_route_path(sipp: Sipp, endpoint: EndpointFactory) -> None:
    ep = await endpoint()
    server = await sipp.start("uas_record_route.xml")
    call = ep.place_call(
        f"sip:service@127.0.0.1:{sipp.port}", MediaSession("127.0.0.1", 31002), from_uri="sip:bridge@127.0.0.1"
    )
    await asyncio.wait_for(call.wait_answered(), 10)
    await asyncio.wait_for(call.bye(), 10)
    (await server).check()
