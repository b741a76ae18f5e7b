"""The inspector keeps its secrets: no page, JSON or pcap shows a trunk's password, a digest answer or nonce that
could be replayed, or the PIN a caller keyed in SIP INFO; and nothing is shown without a SIP admin token."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest
from harness.inbound_setup import CALLER, configure, direct
from harness.inspector import InspectedBridge, InspectorClient, admin_token
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.rooms import wait_for_call_status
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration

PASSWORD = "Tr0mb0ne-Sunset-77"
PIN = "80417326"


async def test_no_page_json_or_pcap_shows_the_password_a_digest_answer_or_the_pin(
    livekit_server: LiveKitServer,
    inspected_bridge: InspectedBridge,
    bridge_api: api.LiveKitAPI,
    livekit_api: api.LiveKitAPI,
    inspector: InspectorClient,
    rtp_phone: RtpPhone,
    tmp_room: str,
    tmp_path: Path,
) -> None:
    await configure(bridge_api, direct(tmp_room, pin=PIN), auth_username="carrier", auth_password=PASSWORD)
    call_id = f"secrets-{tmp_room}@inspector.test"
    # A careless phone even puts the password in a header of its own.
    phone = SippPhone(tmp_path / "sipp", inspected_bridge.sip_port, rtp_phone.port, call_id=call_id,
                      headers={"X-Debug": f"password={PASSWORD}"})  # fmt: skip
    call = asyncio.create_task(phone.call_entering_digits_by_info(PIN + "#", hold_ms=6000, auth=("carrier", PASSWORD)))
    async with TestParticipant(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, tmp_room, "agent"
    ):
        await wait_for_call_status(livekit_api, tmp_room, f"sip_{CALLER}", "active")  # the PIN was right
        result = await call
    result.check()
    summary = await inspector.wait_call(lambda c: c["call_id"] == call_id and c["ended"], "PIN call ended")

    # What could be replayed or guessed from: the digest answer and the nonces, as sipp saw them.
    digest = set(re.findall(r'(?:response|nonce|cnonce)="?([0-9A-Za-z+/=]{6,})', result.messages))
    assert digest and PASSWORD in result.messages  # they were on the wire
    outputs = {}
    for path in ("/", f"/calls/{summary['id']}", "/api/calls", f"/api/calls/{summary['id']}",
                 f"/calls/{summary['id']}/pcap"):  # fmt: skip
        status, _, body = await inspector.get(path, Accept="text/html")
        assert status == 200, path
        outputs[path] = body
    for path, body in outputs.items():
        assert PASSWORD.encode() not in body, path
        assert PIN.encode() not in body, path
        for value in digest:
            assert value.encode() not in body, (path, value)

    # The trace itself is whole: challenge and retry in one call, every PIN digit's INFO, masked.
    detail = await inspector.json(f"/api/calls/{summary['id']}")
    labels = [m["label"] for m in detail["messages"] if m["label"] != "100 Trying"]
    assert labels[:3] == ["INVITE", "401 Unauthorized", "ACK"] and labels.count("INFO") == len(PIN) + 1
    infos = [m["text"] for m in detail["messages"] if m["label"] == "INFO"]
    assert all("Signal=x" in text and not re.search(r"Signal=[0-9#*]", text) for text in infos)
    assert any('response="***"' in m["text"] for m in detail["messages"])


async def test_nothing_is_shown_without_a_sip_admin_token(inspected_bridge: InspectedBridge) -> None:
    base = inspected_bridge.inspector_url
    paths = ("/", "/calls/1", "/calls/1/pcap", "/api/calls", "/api/calls/1")
    anonymous = InspectorClient(base, None)
    caller_only = InspectorClient(base, admin_token(inspected_bridge.api_key, inspected_bridge.api_secret, admin=False))
    forged = InspectorClient(base, admin_token(inspected_bridge.api_key, "not-the-secret-" + "x" * 20))
    try:
        for path in paths:
            status, _, body = await anonymous.get(path)
            assert status == 401, path
            status, kind, body = await anonymous.get(path, Accept="text/html")  # a browser gets the form
            if path.startswith("/api/"):
                assert status == 401 and kind == "application/json" and b"error" in body
            else:
                assert status == 401 and kind == "text/html" and b'<form method="post" action="/login">' in body
            assert (await forged.get(path))[0] == 401, path
            assert (await caller_only.get(path))[0] == 403, path  # a token, but not an admin's
    finally:
        for client in (anonymous, caller_only, forged):
            await client.close()

    # Signing in with a token sets a cookie that then opens the pages by itself.
    token = admin_token(inspected_bridge.api_key, inspected_bridge.api_secret)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:  # IP host: "unsafe"
        async with browser.post(f"{base}/login", data={"token": token, "next": "/"}, allow_redirects=False) as signed:
            assert signed.status == 303 and signed.headers["Location"] == "/"
            assert "HttpOnly" in signed.headers["Set-Cookie"]
        async with browser.get(f"{base}/") as page:
            assert page.status == 200 and "Live calls" in await page.text()
        async with browser.post(f"{base}/login", data={"token": "garbage"}, allow_redirects=False) as refused:
            assert refused.status == 401
