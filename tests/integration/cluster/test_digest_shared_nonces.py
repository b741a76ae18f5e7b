"""Nodes on one Redis share what digest answers they took: an answer taken by one node is a replay at the other.

Nodes of one cluster accept each other's nonces (a front may pass a caller's answer to another node than the one
that challenged it), so a per-node replay record would let a captured answer in once per node.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.bridge import BridgeProcess, api_client
from harness.digest_calls import admitted, challenge, uri_of, without_qop
from harness.inbound_setup import configure, direct
from harness.processes import LiveKitServer, RedisServer
from harness.sip_client import RawSipClient
from harness.sipapi import clear_sip_tables

from sipbridge.sip.auth import DigestCredentials, authorization_for

pytestmark = pytest.mark.integration


async def test_an_answer_taken_by_one_node_is_refused_by_the_other(
    tmp_path: Path, livekit_server: LiveKitServer, redis_server: RedisServer
) -> None:
    clear_sip_tables(redis_server)
    with (
        BridgeProcess(tmp_path / "node-a", livekit=livekit_server, redis=redis_server) as node_a,
        BridgeProcess(tmp_path / "node-b", livekit=livekit_server, redis=redis_server) as node_b,
    ):
        async with api_client(node_a) as client:
            await configure(client, direct("shared-nonce-room"), auth_username="user", auth_password="pass")
        credentials = DigestCredentials("user", "pass")
        async with RawSipClient(node_a.sip_port) as at_a, RawSipClient(node_b.sip_port) as at_b:
            challenge_a = await challenge(at_a)
            with_qop = authorization_for(challenge_a, credentials, "INVITE", uri_of(at_a), nc=1)
            assert (await admitted(at_b, with_qop))[0], "node B takes node A's nonce (shared api_secret)"
            assert not (await admitted(at_a, with_qop))[0], "... and node A knows it was taken"

            plain = authorization_for(without_qop(await challenge(at_b)), credentials, "INVITE", uri_of(at_b))
            assert (await admitted(at_b, plain))[0]
            assert not (await admitted(at_a, f"{plain}, nc=00000002"))[0]
