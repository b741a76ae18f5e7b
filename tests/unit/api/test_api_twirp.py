"""The livekit.SIP Twirp service over real HTTP, in process on the embedded store: codes, formats, grants."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from google.protobuf.message import Message
from livekit.api import AccessToken, SIPGrants
from livekit.protocol.sip import CreateSIPInboundTrunkRequest, SIPInboundTrunkInfo

from sipbridge.api import twirp
from sipbridge.api.auth import Authenticator
from sipbridge.api.sip_service import SIPService
from sipbridge.failure_budget import FailureBudget
from sipbridge.store import SIPStore
from sipbridge.store.sqlite_backend import SqliteBackend

KEY, SECRET = "APItest", "a-secret-that-is-long-enough-for-hs256"
BASE = "/twirp/livekit.SIP/"


def token(*, admin: bool = True, call: bool = False, key: str = KEY, secret: str = SECRET, ttl: int = 600) -> str:
    return (
        AccessToken(key, secret)
        .with_sip_grants(SIPGrants(admin=admin, call=call))
        .with_ttl(datetime.timedelta(seconds=ttl))
        .to_jwt()
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    backend = SqliteBackend(tmp_path / "store.db")
    backend.open()
    store = SIPStore(backend)
    await store.load()
    app = web.Application()
    SIPService(store, Authenticator(KEY, SECRET)).twirp().add_routes(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    await store.close()


async def call(
    client: TestClient[web.Request, web.Application], method: str, body: Any, *, auth: str | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {auth if auth is not None else token()}"}
    response = await client.post(BASE + method, json=body, headers=headers)
    return response.status, await response.json()


async def test_json_create_get_list_delete(client: TestClient[web.Request, web.Application]) -> None:
    status, created = await call(
        client,
        "CreateSIPInboundTrunk",
        {"trunk": {"name": "My trunk", "numbers": ["+15105550100"], "krispEnabled": True}},
    )
    assert status == 200
    trunk_id = created["sip_trunk_id"]
    assert trunk_id.startswith("ST_") and len(trunk_id) == 15
    assert created["krisp_enabled"] is True

    status, got = await call(client, "GetSIPInboundTrunk", {"sip_trunk_id": trunk_id})
    assert status == 200 and got["trunk"]["name"] == "My trunk"

    status, listed = await call(client, "ListSIPInboundTrunk", {})
    assert [t["sip_trunk_id"] for t in listed["items"]] == [trunk_id]

    status, _ = await call(client, "DeleteSIPTrunk", {"sip_trunk_id": trunk_id})
    assert status == 200
    status, error = await call(client, "GetSIPInboundTrunk", {"sip_trunk_id": trunk_id})
    assert (status, error["code"]) == (404, "not_found")
    assert trunk_id in error["msg"]


async def test_protobuf_bodies(client: TestClient[web.Request, web.Application]) -> None:
    request = CreateSIPInboundTrunkRequest(trunk=SIPInboundTrunkInfo(name="pb", numbers=["+1555"]))
    response = await client.post(
        BASE + "CreateSIPInboundTrunk",
        data=request.SerializeToString(),
        headers={"Authorization": f"Bearer {token()}", "Content-Type": "application/protobuf"},
    )
    assert response.status == 200
    assert response.content_type == "application/protobuf"
    reply = SIPInboundTrunkInfo.FromString(await response.read())
    assert reply.name == "pb" and reply.sip_trunk_id.startswith("ST_")


@pytest.mark.parametrize(
    ("auth", "code", "status", "text"),
    [
        ("", "unauthenticated", 401, "no authorization header"),
        ({"secret": "another-secret-entirely-wrong-one"}, "unauthenticated", 401, "signature"),
        ({"key": "APIother"}, "unauthenticated", 401, "another API key"),
        ({"ttl": -600}, "unauthenticated", 401, "expired"),
        ("not.a.jwt", "unauthenticated", 401, "invalid access token"),
        ({"admin": False, "call": True}, "permission_denied", 403, "'admin' grant"),
    ],
)
async def test_admin_methods_check_the_token(
    client: TestClient[web.Request, web.Application],
    auth: str | dict[str, Any],
    code: str,
    status: int,
    text: str,
) -> None:
    # Tokens are made here, not at collection: the suite may reach this test after their 10 minutes are over.
    auth = token(**auth) if isinstance(auth, dict) else auth
    headers = {"Authorization": f"Bearer {auth}"} if auth else {}
    response = await client.post(BASE + "ListSIPInboundTrunk", json={}, headers=headers)
    error = await response.json()
    assert (response.status, error["code"]) == (status, code)
    assert text in error["msg"]


async def test_call_methods_need_the_call_grant_and_a_running_sip_endpoint(
    client: TestClient[web.Request, web.Application],
) -> None:
    status, error = await call(client, "CreateSIPParticipant", {"sip_trunk_id": "ST_x"}, auth=token(admin=True))
    assert (status, error["code"]) == (403, "permission_denied")
    assert "'call' grant" in error["msg"]
    for method in ("CreateSIPParticipant", "TransferSIPParticipant"):  # this API runs without a SIP endpoint
        status, error = await call(client, method, {}, auth=token(admin=False, call=True))
        assert (status, error["code"]) == (503, "unavailable")


async def test_routing_and_body_errors(client: TestClient[web.Request, web.Application]) -> None:
    auth = {"Authorization": f"Bearer {token()}"}
    response = await client.post(BASE + "NoSuchMethod", json={}, headers=auth)
    assert (response.status, (await response.json())["code"]) == (404, "bad_route")
    response = await client.get(BASE + "ListSIPInboundTrunk", headers=auth)
    assert (response.status, (await response.json())["code"]) == (404, "bad_route")
    response = await client.post(BASE + "ListSIPInboundTrunk", data="x", headers={**auth, "Content-Type": "text/plain"})
    assert (response.status, (await response.json())["code"]) == (404, "bad_route")
    for content_type, body in (("application/json", b"{not json"), ("application/protobuf", b"\xff\xff\xff")):
        response = await client.post(
            BASE + "CreateSIPInboundTrunk", data=body, headers={**auth, "Content-Type": content_type}
        )
        error = await response.json()
        assert (response.status, error["code"]) == (400, "malformed"), error
        assert "CreateSIPInboundTrunkRequest" in error["msg"]


@pytest.mark.parametrize(
    ("method", "body", "code", "text"),
    [
        ("CreateSIPInboundTrunk", {}, "invalid_argument", "trunk: missing"),
        ("CreateSIPInboundTrunk", {"trunk": {"name": "open"}}, "invalid_argument", "for security"),
        (
            "CreateSIPInboundTrunk",
            {"trunk": {"sip_trunk_id": "ST_x", "numbers": ["+1"]}},
            "invalid_argument",
            "trunk.sip_trunk_id",
        ),
        ("CreateSIPOutboundTrunk", {"trunk": {"numbers": ["+1"]}}, "invalid_argument", "trunk.address"),
        (
            "CreateSIPOutboundTrunk",
            {"trunk": {"address": "sip:x@y", "numbers": ["+1"]}},
            "invalid_argument",
            "trunk.address",
        ),
        ("CreateSIPDispatchRule", {"dispatch_rule": {"name": "no rule"}}, "invalid_argument", "dispatch_rule.rule"),
        ("GetSIPInboundTrunk", {}, "invalid_argument", "sip_trunk_id: required"),
        ("GetSIPOutboundTrunk", {"sip_trunk_id": "ST_none"}, "not_found", "ST_none"),
        ("UpdateSIPInboundTrunk", {"sip_trunk_id": "ST_none", "update": {"name": "x"}}, "not_found", "ST_none"),
        ("UpdateSIPDispatchRule", {"sip_dispatch_rule_id": "SDR_none", "update": {}}, "not_found", "SDR_none"),
        ("DeleteSIPDispatchRule", {"sip_dispatch_rule_id": "SDR_none"}, "not_found", "SDR_none"),
        ("DeleteSIPTrunk", {"sip_trunk_id": "ST_none"}, "not_found", "ST_none"),
        ("CreateSIPTrunk", {"inbound_numbers_regex": ["^1"]}, "invalid_argument", "inbound_numbers_regex"),
    ],
)
async def test_validation_errors_name_the_field(
    client: TestClient[web.Request, web.Application], method: str, body: dict[str, Any], code: str, text: str
) -> None:
    status, error = await call(client, method, body)
    assert error["code"] == code, error
    assert text in error["msg"]
    assert status in (400, 404)


async def test_conflicting_trunks_and_rules_name_both(client: TestClient[web.Request, web.Application]) -> None:
    _, first = await call(client, "CreateSIPInboundTrunk", {"trunk": {"numbers": ["+15105550100"]}})
    status, error = await call(client, "CreateSIPInboundTrunk", {"trunk": {"numbers": ["15105550100"]}})
    assert (status, error["code"]) == (400, "invalid_argument")
    assert first["sip_trunk_id"] in error["msg"] and "<new>" in error["msg"]

    rule = {"rule": {"dispatchRuleDirect": {"roomName": "open-room"}}, "name": "one"}
    _, created = await call(client, "CreateSIPDispatchRule", {"dispatch_rule": rule})
    status, error = await call(client, "CreateSIPDispatchRule", {"dispatch_rule": {**rule, "name": "two"}})
    assert (status, error["code"]) == (400, "invalid_argument")
    assert created["sip_dispatch_rule_id"] in error["msg"]
    # A PIN tells the rules apart, so this one is accepted.
    status, _ = await call(
        client,
        "CreateSIPDispatchRule",
        {"dispatch_rule": {"rule": {"dispatchRuleDirect": {"roomName": "safe-room", "pin": "12345"}}}},
    )
    assert status == 200


async def test_update_cannot_create_a_conflict(client: TestClient[web.Request, web.Application]) -> None:
    await call(client, "CreateSIPInboundTrunk", {"trunk": {"numbers": ["+1"]}})
    _, second = await call(client, "CreateSIPInboundTrunk", {"trunk": {"numbers": ["+2"]}})
    status, error = await call(
        client,
        "UpdateSIPInboundTrunk",
        {"sip_trunk_id": second["sip_trunk_id"], "update": {"numbers": {"set": ["+1"]}}},
    )
    assert (status, error["code"]) == (400, "invalid_argument")
    # Updating a trunk to what it already is, is no conflict with itself.
    status, updated = await call(
        client, "UpdateSIPInboundTrunk", {"sip_trunk_id": second["sip_trunk_id"], "update": {"name": "renamed"}}
    )
    assert status == 200 and updated["name"] == "renamed" and updated["numbers"] == ["+2"]


async def test_no_body_is_read_or_decoded_before_the_token_is_checked(
    client: TestClient[web.Request, web.Application], monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[str] = []
    real_decode = twirp.decode

    def counting_decode(cls: type[Message], body: bytes, content_type: str) -> Message:
        decoded.append(cls.__name__)
        return real_decode(cls, body, content_type)

    monkeypatch.setattr(twirp, "decode", counting_decode)
    big = b'{"trunk": {"name": "' + b"x" * (900 << 10) + b'"}}'
    for headers in ({}, {"Authorization": "Bearer not.a.jwt"}):
        response = await client.post(
            BASE + "CreateSIPInboundTrunk", data=big, headers={**headers, "Content-Type": "application/json"}
        )
        assert (response.status, (await response.json())["code"]) == (401, "unauthenticated")
    assert decoded == []
    status, _ = await call(client, "ListSIPInboundTrunk", {})
    assert status == 200 and decoded == ["ListSIPInboundTrunkRequest"]


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_over_the_limit_is_refused_naming_the_limit(
    client: TestClient[web.Request, web.Application], chunked: bool
) -> None:
    body = b"{" + b" " * (twirp.MAX_BODY + 10) + b"}"

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1 << 16):
            yield body[start : start + (1 << 16)]

    response = await client.post(
        BASE + "ListSIPInboundTrunk",
        data=chunks() if chunked else body,
        headers={"Authorization": f"Bearer {token()}", "Content-Type": "application/json"},
    )
    error = await response.json()
    assert (response.status, error["code"]) == (400, "malformed")
    assert str(twirp.MAX_BODY) in error["msg"]


async def test_a_source_that_keeps_failing_is_turned_away(client: TestClient[web.Request, web.Application]) -> None:
    budget = FailureBudget()
    codes = []
    for _ in range(int(budget.burst) + 5):
        response = await client.post(BASE + "ListSIPInboundTrunk", json={}, headers={"Authorization": "Bearer bad"})
        codes.append((await response.json())["code"])
    assert codes[: int(budget.burst)] == ["unauthenticated"] * int(budget.burst)
    assert set(codes[int(budget.burst) :]) == {"resource_exhausted"}
    response = await client.post(BASE + "ListSIPInboundTrunk", json={}, headers={"Authorization": f"Bearer {token()}"})
    assert response.status == 429  # even a good token, until the source's budget refills


async def test_large_bodies_decode_off_the_loop_with_the_same_result(
    client: TestClient[web.Request, web.Application],
) -> None:
    numbers = [f"+1510555{i:04d}" for i in range(6000)]  # a body of ~100 KB, decoded in a worker thread
    status, created = await call(client, "CreateSIPInboundTrunk", {"trunk": {"name": "big", "numbers": numbers}})
    assert status == 200 and created["numbers"] == numbers
