"""Interop with sipp: basic calls both directions, BYE from each side, CANCEL, loss, TCP, OPTIONS."""

from __future__ import annotations

import asyncio
import contextlib

from sipp_harness import EndpointFactory, Sipp

from sipbridge.sip import CallFailed, InboundLeg
from sipbridge.sip.events import CallEnded, DtmfReceived
from sipbridge.sip.offer_answer import MediaSession


def answering(ended: list[CallEnded]):  # type: ignore[no-untyped-def]
    async def handler(call: InboundLeg) -> None:
        call.ring()
        with contextlib.suppress(CallFailed):  # under loss sipp's BYE may overtake its ACK
            await call.answer(MediaSession("127.0.0.1", 31000))
        ended.append(await call.wait_ended())

    return handler


async def test_sipp_uac_calls_us_and_hangs_up(sipp: Sipp, endpoint: EndpointFactory) -> None:
    ended: list[CallEnded] = []
    ep = await endpoint(answering(ended))
    (await sipp.run("uac_basic.xml", ep.port)).check()
    assert ended and ended[0].reason == "bye" and ended[0].by_remote


async def test_sipp_uac_we_hang_up(sipp: Sipp, endpoint: EndpointFactory) -> None:
    ended: list[CallEnded] = []

    async def handler(call: InboundLeg) -> None:
        await call.answer(MediaSession("127.0.0.1", 31000))
        ended.append(await call.bye())

    ep = await endpoint(handler)
    (await sipp.run("uac_remote_bye.xml", ep.port)).check()
    assert ended and ended[0].reason == "bye" and not ended[0].by_remote


async def test_sipp_uas_answers_our_call(sipp: Sipp, endpoint: EndpointFactory) -> None:
    ep = await endpoint()
    server = await sipp.start("uas")
    call = ep.place_call(
        f"sip:service@127.0.0.1:{sipp.port}", MediaSession("127.0.0.1", 31002), from_uri="sip:bridge@127.0.0.1"
    )
    media = await asyncio.wait_for(call.wait_answered(), 10)
    assert media.codec.name == "PCMU" and media.remote_port == sipp.media_port
    assert (await asyncio.wait_for(call.bye(), 10)).reason == "bye"
    (await server).check()


async def test_sipp_cancels_before_answer(sipp: Sipp, endpoint: EndpointFactory) -> None:
    ended: list[CallEnded] = []

    async def handler(call: InboundLeg) -> None:
        call.ring()
        ended.append(await call.wait_ended())

    ep = await endpoint(handler)
    (await sipp.run("uac_cancel.xml", ep.port)).check()
    assert ended and ended[0].reason == "cancel"


async def test_udp_loss_recovered_by_retransmission(sipp: Sipp, endpoint: EndpointFactory) -> None:
    """sipp drops 15% of what it sends and receives; both sides' retransmissions must still finish every call."""
    ended: list[CallEnded] = []
    ep = await endpoint(answering(ended))
    result = await sipp.run("uac_basic.xml", ep.port, calls=10, extra=("-lost", "15", "-r", "5"), limit=90)
    result.check()
    # sipp can exit on the last 200 OK before our handler task has recorded that call's end, and when its ACK is
    # "lost" it sometimes counts the call done without ever sending the BYE: that call then ends on our side when
    # the ACK wait runs out (64*T1 = 32 s, RFC 3261 §13.3.1.4), with our BYE.
    deadline = asyncio.get_running_loop().time() + 45
    while len(ended) < 10 and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110 (handler tasks)
        await asyncio.sleep(0.05)
    assert len(ended) == 10
    assert {e.reason for e in ended} <= {"bye", "ack-timeout"}


async def test_tcp_transport(sipp: Sipp, endpoint: EndpointFactory) -> None:
    ended: list[CallEnded] = []
    ep = await endpoint(answering(ended))
    (await sipp.run("uac_basic.xml", ep.port, transport="t1", calls=3, extra=("-r", "10"))).check()
    assert len(ended) == 3 and all(e.by_remote for e in ended)


async def test_options_ping(sipp: Sipp, endpoint: EndpointFactory) -> None:
    ep = await endpoint()
    (await sipp.run("options.xml", ep.port)).check()


async def test_tcp_we_hang_up_over_the_callers_connection(sipp: Sipp, endpoint: EndpointFactory) -> None:
    ended: list[CallEnded] = []

    async def handler(call: InboundLeg) -> None:
        await call.answer(MediaSession("127.0.0.1", 31000))
        ended.append(await call.bye())

    ep = await endpoint(handler)
    (await sipp.run("uac_remote_bye.xml", ep.port, transport="t1")).check()
    assert ended and not ended[0].by_remote


async def test_dtmf_by_sip_info(sipp: Sipp, endpoint: EndpointFactory) -> None:
    digits: list[str] = []

    async def handler(call: InboundLeg) -> None:
        await call.answer(MediaSession("127.0.0.1", 31000))
        async for event in call.events():
            if isinstance(event, DtmfReceived):
                digits.append(event.digit)
                if len(digits) == 2:
                    await call.bye()

    ep = await endpoint(handler)
    (await sipp.run("uac_info_dtmf.xml", ep.port)).check()
    assert digits == ["5", "#"]


async def test_hidden_port_stays_silent(sipp: Sipp, endpoint: EndpointFactory) -> None:
    dropped: list[str] = []

    async def handler(call: InboundLeg) -> None:
        dropped.append(call.from_.display_name or "")
        call.drop()  # e.g. no trunk matched this caller

    ep = await endpoint(handler, hide_inbound_port=True)
    (await sipp.run("uac_hidden.xml", ep.port)).check()
    assert dropped == ["scanner"]
