"""The inspector's web app in process: nothing without a SIP admin token (401, or 403 for another grant), a
sign-in that sets a cookie holding the token, the calls as JSON and pages, a pcap download, 404 for a call gone."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from inspector_sip_texts import CALL_ID, PHONE, basic_call
from livekit import api

from sipbridge.config import InspectorSettings
from sipbridge.inspector.book import TraceBook
from sipbridge.inspector.trace import CallSummary
from sipbridge.inspector.web import COOKIE, InspectorApp

KEY, SECRET = "APIinspector", "a-secret-of-at-least-thirty-two-bytes!"


def token(*, admin: bool = True, secret: str = SECRET, ttl: float = 600) -> str:
    grants = api.SIPGrants(admin=admin, call=True)
    access = api.AccessToken(KEY, secret).with_sip_grants(grants)
    return access.with_ttl(datetime.timedelta(seconds=ttl)).to_jwt()


@pytest.fixture
async def client() -> AsyncIterator[TestClient[object, object]]:
    book = TraceBook(InspectorSettings())
    book.local_address = lambda transport: ("192.0.2.1", 5060)
    for data, outgoing in basic_call()[:1]:
        book.record(data, outgoing, PHONE)
    trace = book.claim(CALL_ID, CallSummary("SCL_web", "inbound", from_number="+13105550100", to_number="+15105550100"))
    for data, outgoing in basic_call()[1:]:
        book.record(data, outgoing, PHONE)
    book.end(trace)
    server = TestServer(InspectorApp(book, KEY, SECRET).application())
    async with TestClient(server) as test_client:
        yield test_client


async def test_without_an_admin_token_nothing_is_shown(client: TestClient[object, object]) -> None:
    for path in ("/", "/calls/1", "/calls/1/pcap", "/api/calls", "/api/calls/1"):
        response = await client.get(path)
        assert response.status == 401 and "Bearer" in response.headers["WWW-Authenticate"]
        assert "error" in await response.json()
        for forged_or_expired in (token(secret="another-secret-of-thirty-two-bytes!!"), token(ttl=-60)):
            denied = await client.get(path, headers={"Authorization": f"Bearer {forged_or_expired}"})
            assert denied.status == 401
        assert (await client.get(path, headers={"Authorization": f"Bearer {token(admin=False)}"})).status == 403


async def test_an_admin_sees_the_calls_as_json_pages_and_pcap(client: TestClient[object, object]) -> None:
    headers = {"Authorization": f"Bearer {token()}"}
    listed = await (await client.get("/api/calls", headers=headers)).json()
    assert [c["lk_call_id"] for c in listed["ended"]] == ["SCL_web"] and listed["active"] == []
    detail = await (await client.get("/api/calls/SCL_web", headers=headers)).json()
    assert [m["label"] for m in detail["messages"]][:4] == ["INVITE", "100 Trying", "180 Ringing", "200 OK"]
    assert detail["sip_status"] == 200 and detail["messages"][0]["from"] == "192.0.2.10:5070"
    page = await client.get(f"/calls/{detail['id']}", headers=headers)
    assert page.status == 200 and page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert (await page.text()).count('class="arrow"') == 7
    pcap = await client.get(f"/calls/{detail['id']}/pcap", headers=headers)
    assert pcap.headers["Content-Disposition"] == "attachment; filename=call-SCL_web.pcap"
    assert (await pcap.read())[:4] == b"\xd4\xc3\xb2\xa1"
    assert (await client.get("/calls/999", headers=headers)).status == 404


async def test_signing_in_sets_a_cookie_that_opens_the_pages(client: TestClient[object, object]) -> None:
    form = await client.get("/login")
    assert form.status == 200 and 'name="token"' in await form.text()
    refused = await client.post("/login", data={"token": token(admin=False)}, allow_redirects=False)
    assert refused.status == 403
    signed = await client.post("/login", data={"token": token(), "next": "//evil.example/"}, allow_redirects=False)
    assert signed.status == 303 and signed.headers["Location"] == "/"  # never off this site
    cookie = signed.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and 590 <= int(cookie["max-age"]) <= 600
    page = await client.get("/", cookies={COOKIE: cookie.value})
    assert page.status == 200 and "SCL_web" not in await page.text()  # the list links by trace, shows numbers
    assert "+13105550100" in await page.text()
    out = await client.post("/logout", allow_redirects=False)
    assert out.status == 303 and out.cookies[COOKIE].value == ""
