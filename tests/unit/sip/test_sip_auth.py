"""Digest auth: RFC 2617's worked example, our server against our client, stale and replayed nonces."""

from __future__ import annotations

import pytest

from sipbridge.sip.auth import (
    Credentials,
    DigestServer,
    Verdict,
    authorization_for,
    digest_response,
    parse_digest,
)


def test_rfc2617_example_vector() -> None:
    # The worked example of RFC 2617 §3.5 (HTTP, but the same arithmetic).
    assert (
        digest_response(
            algorithm="MD5",
            username="Mufasa",
            realm="testrealm@host.com",
            password="Circle Of Life",
            method="GET",
            uri="/dir/index.html",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop="auth",
            nc="00000001",
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_server_accepts_own_client(algorithm: str) -> None:
    server = DigestServer("sip.example.com", algorithm=algorithm)
    challenge = server.challenge(now=1000.0)
    assert f"algorithm={algorithm}" in challenge and 'qop="auth"' in challenge
    auth = authorization_for(challenge, Credentials("alice", "s3cret"), "INVITE", "sip:bob@example.com")
    assert parse_digest(auth)["algorithm"] == algorithm
    assert server.verify(auth, "INVITE", "alice", "s3cret", now=1001.0) is Verdict.OK


def test_wrong_password_user_or_method_rejected() -> None:
    server = DigestServer("r")
    challenge = server.challenge(now=0.0)
    auth = authorization_for(challenge, Credentials("alice", "pw"), "INVITE", "sip:x@y")
    assert server.verify(auth, "INVITE", "alice", "other", now=1.0) is Verdict.REJECTED
    assert server.verify(auth, "INVITE", "bob", "pw", now=1.0) is Verdict.REJECTED
    assert server.verify(auth, "BYE", "alice", "pw", now=1.0) is Verdict.REJECTED
    assert server.verify(None, "INVITE", "alice", "pw", now=1.0) is Verdict.MISSING
    assert server.verify("Basic abc", "INVITE", "alice", "pw", now=1.0) is Verdict.REJECTED


def test_replayed_nonce_count_rejected_and_higher_count_accepted() -> None:
    server = DigestServer("r")
    challenge = server.challenge(now=0.0)
    first = authorization_for(challenge, Credentials("a", "p"), "INVITE", "sip:x@y", nc=1)
    assert server.verify(first, "INVITE", "a", "p", now=1.0) is Verdict.OK
    assert server.verify(first, "INVITE", "a", "p", now=2.0) is Verdict.REJECTED
    second = authorization_for(challenge, Credentials("a", "p"), "INVITE", "sip:x@y", nc=2)
    assert server.verify(second, "INVITE", "a", "p", now=3.0) is Verdict.OK


def test_stale_nonce_and_forged_nonce() -> None:
    server = DigestServer("r", nonce_lifetime=30.0)
    challenge = server.challenge(now=0.0)
    auth = authorization_for(challenge, Credentials("a", "p"), "INVITE", "sip:x@y")
    assert server.verify(auth, "INVITE", "a", "p", now=31.0) is Verdict.STALE
    assert "stale=true" in server.challenge(now=31.0, stale=True)
    other = DigestServer("r")
    forged = authorization_for(other.challenge(now=0.0), Credentials("a", "p"), "INVITE", "sip:x@y")
    assert server.verify(forged, "INVITE", "a", "p", now=1.0) is Verdict.REJECTED


def test_client_without_qop_and_with_opaque() -> None:
    challenge = 'Digest realm="r", nonce="abc", opaque="op"'
    auth = parse_digest(authorization_for(challenge, Credentials("u", "p"), "REFER", "sip:x@y"))
    assert "qop" not in auth and auth["opaque"] == "op"
    expected = digest_response(
        algorithm="MD5",
        username="u",
        realm="r",
        password="p",
        method="REFER",
        uri="sip:x@y",
        nonce="abc",
        qop=None,
    )
    assert auth["response"] == expected
