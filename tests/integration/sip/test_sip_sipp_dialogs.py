"""Interop with sipp: digest both ways, delayed offer, hold/unhold, session timers."""

from __future__ import annotations

import asyncio

from sipp_harness import EndpointFactory, Sipp

from sipbridge.sip import InboundLeg
from sipbridge.sip.auth import DigestCredentials, DigestVerdict
from sipbridge.sip.events import CallEnded, MediaUpdated
from sipbridge.sip.offer_answer import MediaParams, MediaSession


async def test_we_challenge_sipp_with_digest(sipp: Sipp, endpoint: EndpointFactory) -> None:
    verdicts: list[DigestVerdict] = []
    ended: list[CallEnded] = []

    async def handler(call: InboundLeg) -> None:
        verdict = call.authenticate("sipp", "secret").verdict
        verdicts.append(verdict)
        if verdict is not DigestVerdict.OK:
            call.challenge()
            return
        await call.answer(MediaSession("127.0.0.1", 31000))
        ended.append(await call.wait_ended())

    ep = await endpoint(handler)
    (await sipp.run("uac_auth.xml", ep.port, extra=("-au", "sipp", "-ap", "secret"))).check()
    assert verdicts == [DigestVerdict.MISSING, DigestVerdict.OK] and ended[0].reason == "bye"


async def test_sipp_challenges_our_invite(sipp: Sipp, endpoint: EndpointFactory) -> None:
    ep = await endpoint()
    server = await sipp.start("uas_auth.xml")
    call = ep.place_call(
        f"sip:service@127.0.0.1:{sipp.port}",
        MediaSession("127.0.0.1", 31002),
        from_uri="sip:bridge@127.0.0.1",
        credentials=DigestCredentials("bridge", "s3cret"),
    )
    await asyncio.wait_for(call.wait_answered(), 10)
    await asyncio.wait_for(call.bye(), 10)
    (await server).check()


async def test_invite_without_sdp(sipp: Sipp, endpoint: EndpointFactory) -> None:
    negotiated: list[MediaParams] = []

    async def handler(call: InboundLeg) -> None:
        assert call.offer is None
        negotiated.append(await call.answer(MediaSession("127.0.0.1", 31000)))
        await call.wait_ended()

    ep = await endpoint(handler)
    (await sipp.run("uac_delayed_offer.xml", ep.port)).check()
    assert negotiated[0].codec.name == "PCMU" and negotiated[0].remote_port == sipp.media_port


async def test_hold_and_unhold_reinvites(sipp: Sipp, endpoint: EndpointFactory) -> None:
    directions: list[str] = []

    async def handler(call: InboundLeg) -> None:
        await call.answer(MediaSession("127.0.0.1", 31000))
        async for event in call.events():
            if isinstance(event, MediaUpdated):
                directions.append(event.media.direction)

    ep = await endpoint(handler)
    (await sipp.run("uac_hold.xml", ep.port)).check()
    assert directions == ["recvonly", "sendrecv"]


async def test_session_timer_refresh(sipp: Sipp, endpoint: EndpointFactory) -> None:
    ended: list[CallEnded] = []

    async def handler(call: InboundLeg) -> None:
        await call.answer(MediaSession("127.0.0.1", 31000))
        ended.append(await call.wait_ended())

    ep = await endpoint(handler, min_se=2)
    (await sipp.run("uac_session_timer.xml", ep.port)).check()
    assert ended[0].reason == "bye" and ended[0].by_remote


async def test_session_timer_refresh_by_reinvite_when_update_not_allowed(sipp: Sipp, endpoint: EndpointFactory) -> None:
    async def handler(call: InboundLeg) -> None:
        await call.answer(MediaSession("127.0.0.1", 31000))
        await call.wait_ended()

    ep = await endpoint(handler, min_se=2)
    (await sipp.run("uac_session_timer_reinvite.xml", ep.port)).check()


async def test_refresh_reinvite_answered_with_unchanged_sdp(sipp: Sipp, endpoint: EndpointFactory) -> None:
    updates: list[MediaUpdated] = []

    async def handler(call: InboundLeg) -> None:
        await call.answer(MediaSession("127.0.0.1", 31000))
        async for event in call.events():
            if isinstance(event, MediaUpdated):
                updates.append(event)

    ep = await endpoint(handler)
    (await sipp.run("uac_refreshes_us.xml", ep.port)).check()
    assert updates == []  # a pure refresh changes nothing the media layer must follow


async def test_we_hold_and_resume_by_reinvite(sipp: Sipp, endpoint: EndpointFactory) -> None:
    ep = await endpoint()
    server = await sipp.start("uas_hold.xml")
    call = ep.place_call(
        f"sip:service@127.0.0.1:{sipp.port}", MediaSession("127.0.0.1", 31002), from_uri="sip:bridge@127.0.0.1"
    )
    await asyncio.wait_for(call.wait_answered(), 10)
    directions: list[str] = []
    events = call.events()
    for action in (call.hold, call.unhold):
        action()
        async for event in events:
            if isinstance(event, MediaUpdated):
                directions.append(event.media.direction)
                break
    assert directions == ["sendonly", "sendrecv"]
    await asyncio.wait_for(call.bye(), 10)
    (await server).check()
