"""RFC 3262 with sipp both ways: sipp requiring 100rel gets our 183 reliably and PRACKs it; a carrier's reliable 183
is PRACKed by us in its early dialog."""

from __future__ import annotations

import asyncio

from sipp_harness import EndpointFactory, Sipp

from sipbridge.sip import InboundLeg
from sipbridge.sip.events import CallEnded, CallProgress
from sipbridge.sip.offer_answer import MediaSession


async def test_sipp_requiring_100rel_pracks_our_early_media(sipp: Sipp, endpoint: EndpointFactory) -> None:
    ended: list[CallEnded] = []

    async def handler(call: InboundLeg) -> None:
        media = MediaSession("127.0.0.1", 31000)
        call.progress(media)  # 183 with our answer, sent reliably
        await call.answer(media)  # held until sipp's PRACK
        ended.append(await call.wait_ended())

    ep = await endpoint(handler)
    (await sipp.run("uac_100rel.xml", ep.port)).check()
    assert ended and ended[0].reason == "bye"


async def test_we_prack_a_carriers_reliable_183(sipp: Sipp, endpoint: EndpointFactory) -> None:
    ep = await endpoint()
    server = await sipp.start("uas_100rel.xml")
    call = ep.place_call(
        f"sip:service@127.0.0.1:{sipp.port}", MediaSession("127.0.0.1", 31002), from_uri="sip:bridge@127.0.0.1"
    )
    events = []

    async def watch() -> None:
        async for event in call.events():
            events.append(event)

    watching = asyncio.ensure_future(watch())
    media = await asyncio.wait_for(call.wait_answered(), 15)
    assert media.remote_port == sipp.media_port
    await asyncio.wait_for(call.bye(), 10)
    (await server).check()
    await watching
    progress = [e for e in events if isinstance(e, CallProgress)]
    assert [p.status for p in progress] == [183] and progress[0].media is not None
