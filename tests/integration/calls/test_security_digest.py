"""Digest replay against a running bridge: a captured answer, sent again, never admits a call.

The hole this closes: an answer without ``qop`` does not hash the nonce count, so re-sending a captured
``Authorization`` with a fresh ``nc=`` used to pass the replay check for the nonce's whole lifetime.
"""

from __future__ import annotations

import pytest
from harness.bridge import BridgeProcess
from harness.digest_calls import admitted, challenge, uri_of, without_qop
from harness.inbound_setup import configure, direct
from harness.sip_client import RawSipClient
from livekit import api

from sipbridge.sip.auth import DigestCredentials, authorization_for, parse_digest

pytestmark = pytest.mark.integration

CREDENTIALS = DigestCredentials("user", "pass")


async def test_replayed_answer_without_qop_is_never_admitted(
    call_bridge: BridgeProcess, bridge_api: api.LiveKitAPI
) -> None:
    await configure(bridge_api, direct("replay-room"), auth_username="user", auth_password="pass")
    async with RawSipClient(call_bridge.sip_port) as sip:
        captured = authorization_for(without_qop(await challenge(sip)), CREDENTIALS, "INVITE", uri_of(sip))
        assert "qop" not in parse_digest(captured)
        assert (await admitted(sip, captured))[0], "the legitimate answer is admitted"

        outcomes = [await admitted(sip, f"{captured}, nc={n:08x}") for n in range(2, 102)]
        assert [ok for ok, _ in outcomes].count(True) == 0
        assert {status for _, status in outcomes} <= {401, 403}

        # A fresh answer (new nonce) by someone who knows the password still works.
        fresh = authorization_for(without_qop(await challenge(sip)), CREDENTIALS, "INVITE", uri_of(sip))
        assert (await admitted(sip, fresh))[0]


async def test_qop_answers_with_increasing_counts_work_and_replays_do_not(
    call_bridge: BridgeProcess, bridge_api: api.LiveKitAPI
) -> None:
    await configure(bridge_api, direct("qop-room"), auth_username="user", auth_password="pass")
    async with RawSipClient(call_bridge.sip_port) as sip:
        challenge_value = await challenge(sip)
        assert 'qop="auth"' in challenge_value
        first = authorization_for(challenge_value, CREDENTIALS, "INVITE", uri_of(sip), nc=1)
        second = authorization_for(challenge_value, CREDENTIALS, "INVITE", uri_of(sip), nc=2)
        assert (await admitted(sip, first))[0]
        assert (await admitted(sip, second))[0], "the same nonce with a higher count"
        assert not (await admitted(sip, second))[0], "the same answer again"
        assert not (await admitted(sip, first))[0], "a lower count"
        wrong = authorization_for(challenge_value, DigestCredentials("user", "guess"), "INVITE", uri_of(sip), nc=3)
        assert await admitted(sip, wrong) == (False, 403)


async def test_password_guessing_is_cut_off_per_source(call_bridge: BridgeProcess, bridge_api: api.LiveKitAPI) -> None:
    """After 10 wrong answers from one address, its answers are refused unchecked (a guess every 10 s at most);
    a caller elsewhere is not affected."""
    await configure(bridge_api, direct("guess-room"), auth_username="user", auth_password="pass")
    async with RawSipClient(call_bridge.sip_port) as guesser:
        statuses = []
        for guess in range(15):
            wrong = authorization_for(await challenge(guesser), DigestCredentials("user", f"guess{guess}"), "INVITE",
                                      uri_of(guesser))  # fmt: skip
            statuses.append(await admitted(guesser, wrong))
        assert statuses == [(False, 403)] * 15
        right = authorization_for(await challenge(guesser), CREDENTIALS, "INVITE", uri_of(guesser))
        assert await admitted(guesser, right) == (False, 403), "the guesser's address is cut off"
    assert len(call_bridge.process.grep_log("too many failed digest answers")) >= 5
    async with RawSipClient(call_bridge.sip_port, host="127.0.0.2") as elsewhere:
        right = authorization_for(await challenge(elsewhere), CREDENTIALS, "INVITE", uri_of(elsewhere))
        assert (await admitted(elsewhere, right))[0]


async def test_the_trunks_auth_realm_is_the_challenges_realm(
    call_bridge: BridgeProcess, bridge_api: api.LiveKitAPI
) -> None:
    await configure(
        bridge_api, direct("realm-room"), auth_username="user", auth_password="pass", auth_realm="carrier.example"
    )
    async with RawSipClient(call_bridge.sip_port) as sip:
        challenge_value = await challenge(sip)
        assert parse_digest(challenge_value)["realm"] == "carrier.example"
        answer = authorization_for(challenge_value, CREDENTIALS, "INVITE", uri_of(sip))
        assert (await admitted(sip, answer))[0]
