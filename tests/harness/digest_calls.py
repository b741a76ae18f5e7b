"""Digest-authenticated INVITEs written by hand (`RawSipClient`), for the replay tests: ask a bridge for a
challenge, answer it with or without ``qop``, and see whether the bridge lets the call in."""

from __future__ import annotations

from harness.inbound_setup import CALLER, TRUNK_NUMBER
from harness.sip_client import RawSipClient, SentRequest
from sipbridge.sip.auth import parse_digest


async def challenge(sip: RawSipClient) -> str:
    """A fresh WWW-Authenticate challenge from the bridge (an INVITE without credentials, ACKed)."""
    invite = sip.invite(TRUNK_NUMBER, CALLER)
    response = await sip.final(invite)
    sip.ack(invite, response)
    assert response.status == 401, response.status
    value = response.headers.get("WWW-Authenticate")
    assert value is not None
    return value


def without_qop(challenge_value: str) -> str:
    """The same challenge with ``qop`` left out, as an RFC 2069 client answers it."""
    params = parse_digest(challenge_value)
    return f'Digest realm="{params["realm"]}", nonce="{params["nonce"]}", algorithm={params["algorithm"]}'


def uri_of(sip: RawSipClient) -> str:
    """The Request-URI `RawSipClient.invite` uses towards its bridge (the digest ``uri``)."""
    return f"sip:{TRUNK_NUMBER}@{sip.bridge[0]}:{sip.bridge[1]}"


async def admitted(sip: RawSipClient, authorization: str) -> tuple[bool, int]:
    """Send an INVITE with these credentials: (True, 18x) when the bridge lets the call in (it rings; the call is
    then cancelled), else (False, the final status)."""
    invite = sip.invite(TRUNK_NUMBER, CALLER, headers={"Authorization": authorization})
    response = await sip.first_after_trying(invite)
    if response.status >= 200:
        sip.ack(invite, response)
        return False, response.status
    await cancel(sip, invite)
    return True, response.status


async def cancel(sip: RawSipClient, invite: SentRequest) -> None:
    sip.cancel(invite)
    final = await sip.final(invite)
    assert final.status == 487, final.status
    sip.ack(invite, final)
