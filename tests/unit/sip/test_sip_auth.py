"""Digest auth: RFC 2617's worked example, our server against our client, stale, forged and replayed answers."""

from __future__ import annotations

import pytest

from sipbridge.sip.auth import (
    DigestCredentials,
    DigestServer,
    DigestVerdict,
    NonceCounts,
    NonceUse,
    authorization_for,
    digest_response,
    parse_digest,
)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def server_with_clock(**kwargs: object) -> tuple[DigestServer, Clock]:
    clock = Clock()
    return DigestServer("r", clock=clock, **kwargs), clock  # type: ignore[arg-type]


def admitted(server: DigestServer, counts: NonceCounts, header: str, clock: Clock, password: str = "p") -> bool:
    """What the call flow does: verify, then record the nonce use; True when the request is let in."""
    check = server.verify(header, "INVITE", "a", password)
    return check.verdict is DigestVerdict.OK and check.use is not None and counts.claim(check.use, clock())


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
    challenge = server.challenge()
    assert f"algorithm={algorithm}" in challenge and 'qop="auth"' in challenge
    auth = authorization_for(challenge, DigestCredentials("alice", "s3cret"), "INVITE", "sip:bob@example.com")
    assert parse_digest(auth)["algorithm"] == algorithm
    check = server.verify(auth, "INVITE", "alice", "s3cret")
    assert check.verdict is DigestVerdict.OK and check.use is not None and check.use.count == 1


def test_wrong_password_user_or_method_rejected() -> None:
    server = DigestServer("r")
    auth = authorization_for(server.challenge(), DigestCredentials("alice", "pw"), "INVITE", "sip:x@y")
    assert server.verify(auth, "INVITE", "alice", "other").verdict is DigestVerdict.REJECTED
    assert server.verify(auth, "INVITE", "bob", "pw").verdict is DigestVerdict.REJECTED
    assert server.verify(auth, "BYE", "alice", "pw").verdict is DigestVerdict.REJECTED
    assert server.verify(None, "INVITE", "alice", "pw").verdict is DigestVerdict.MISSING
    assert server.verify("Basic abc", "INVITE", "alice", "pw").verdict is DigestVerdict.REJECTED


def test_qop_answers_need_a_strictly_increasing_count() -> None:
    server, clock = server_with_clock()
    counts = NonceCounts()
    challenge = server.challenge()
    first = authorization_for(challenge, DigestCredentials("a", "p"), "INVITE", "sip:x@y", nc=1)
    assert admitted(server, counts, first, clock)
    assert not admitted(server, counts, first, clock)  # the same answer again
    third = authorization_for(challenge, DigestCredentials("a", "p"), "INVITE", "sip:x@y", nc=3)
    assert admitted(server, counts, third, clock)
    second = authorization_for(challenge, DigestCredentials("a", "p"), "INVITE", "sip:x@y", nc=2)
    assert not admitted(server, counts, second, clock)  # lower than one already taken


def test_answer_without_qop_spends_its_nonce_whatever_nc_says() -> None:
    """The replay that bypassed authentication: without qop, nc is not in the hash, so a captured answer with a
    fresh nc= must still be refused."""
    server, clock = server_with_clock()
    counts = NonceCounts()
    nonce = parse_digest(server.challenge())["nonce"]
    plain = authorization_for(f'Digest realm="r", nonce="{nonce}"', DigestCredentials("a", "p"), "INVITE", "sip:x@y")
    assert "qop" not in parse_digest(plain)
    assert admitted(server, counts, plain, clock)
    replays = [f"{plain}, nc={n:08x}" for n in range(2, 102)]
    assert sum(admitted(server, counts, replay, clock) for replay in replays) == 0
    # ... and a qop answer cannot revive a nonce spent without qop
    challenge = f'Digest realm="r", nonce="{nonce}", qop="auth"'
    with_qop = authorization_for(challenge, DigestCredentials("a", "p"), "INVITE", "sip:x@y", nc=5)
    assert not admitted(server, counts, with_qop, clock)
    # a fresh nonce answered without qop works once more
    fresh = parse_digest(server.challenge())["nonce"]
    again = authorization_for(f'Digest realm="r", nonce="{fresh}"', DigestCredentials("a", "p"), "INVITE", "sip:x@y")
    assert admitted(server, counts, again, clock)


def test_qop_answer_without_count_or_cnonce_is_rejected() -> None:
    server = DigestServer("r")
    auth = authorization_for(server.challenge(), DigestCredentials("a", "p"), "INVITE", "sip:x@y")
    params = parse_digest(auth)
    without_nc = auth.replace(f"nc={params['nc']}", "nc=1")
    assert server.verify(without_nc, "INVITE", "a", "p").verdict is DigestVerdict.REJECTED
    without_cnonce = auth.replace(f'cnonce="{params["cnonce"]}"', 'cnonce=""')
    assert server.verify(without_cnonce, "INVITE", "a", "p").verdict is DigestVerdict.REJECTED


def test_stale_and_forged_nonces() -> None:
    server, clock = server_with_clock(nonce_lifetime=30.0)
    auth = authorization_for(server.challenge(), DigestCredentials("a", "p"), "INVITE", "sip:x@y")
    clock.now += 31
    assert server.verify(auth, "INVITE", "a", "p").verdict is DigestVerdict.STALE
    assert "stale=true" in server.challenge(stale=True)
    other = DigestServer("r")
    forged = authorization_for(other.challenge(), DigestCredentials("a", "p"), "INVITE", "sip:x@y")
    assert server.verify(forged, "INVITE", "a", "p").verdict is DigestVerdict.REJECTED


def test_nodes_sharing_a_secret_accept_each_others_nonces() -> None:
    clock = Clock()
    node_a = DigestServer("r", secret=b"k" * 32, clock=clock)
    node_b = DigestServer("r", secret=b"k" * 32, clock=clock)
    auth = authorization_for(node_a.challenge(), DigestCredentials("a", "p"), "INVITE", "sip:x@y")
    assert node_b.verify(auth, "INVITE", "a", "p").verdict is DigestVerdict.OK


def test_answer_must_use_the_challenged_algorithm() -> None:
    """No downgrade: a SHA-256 challenge answered with MD5 (or a -sess variant we did not offer) is refused."""
    server = DigestServer("r", algorithm="SHA-256")
    challenge = server.challenge()
    for algorithm in ("MD5", "SHA-256-sess"):
        credentials = DigestCredentials("a", "p")
        auth = authorization_for(challenge.replace("SHA-256", algorithm), credentials, "INVITE", "sip:x")
        assert parse_digest(auth)["algorithm"] == algorithm
        assert server.verify(auth, "INVITE", "a", "p").verdict is DigestVerdict.REJECTED


@pytest.mark.parametrize("algorithm", ["MD5-sess", "SHA-256-sess"])
def test_client_answers_sess_challenges(algorithm: str) -> None:
    challenge = f'Digest realm="r", nonce="n1", algorithm={algorithm}, qop="auth"'
    auth = parse_digest(authorization_for(challenge, DigestCredentials("u", "p"), "INVITE", "sip:x@y", cnonce="c1"))
    assert auth["algorithm"] == algorithm and auth["cnonce"] == "c1"
    assert auth["response"] == digest_response(
        algorithm=algorithm, username="u", realm="r", password="p", method="INVITE", uri="sip:x@y",
        nonce="n1", qop="auth", nc="00000001", cnonce="c1",
    )  # fmt: skip
    credentials = DigestCredentials("u", "p")
    plain = authorization_for(challenge.replace("-sess", ""), credentials, "INVITE", "sip:x@y", cnonce="c1")
    assert parse_digest(plain)["response"] != auth["response"]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda a: a.replace('response="', 'response="é'),
        lambda a: a.replace('nonce="', 'nonce="ü'),
        lambda a: a.replace('nonce="', 'nonce="' + "9" * 5000),
        lambda a: a.replace("nc=00000001", "nc=" + "1" * 5000),
        lambda a: a.replace("nc=00000001", "nc=0000000g"),
        lambda a: a + ", algorithm=SHA-512",
    ],
)
def test_malformed_answers_are_rejected_not_raised(mangle: object) -> None:
    server = DigestServer("r")
    auth = authorization_for(server.challenge(), DigestCredentials("a", "p"), "INVITE", "sip:x@y")
    assert server.verify(mangle(auth), "INVITE", "a", "p").verdict is DigestVerdict.REJECTED  # type: ignore[operator]


def test_nonce_counts_stay_bounded_and_forget_expired_nonces() -> None:
    counts = NonceCounts(capacity=100)
    for i in range(1000):
        assert counts.claim(NonceUse(f"n{i}", 1, expires=10.0 + i), now=float(i))
    assert len(counts) <= 100
    # an expired nonce's record may go, but while it lives a replay is refused
    assert not counts.claim(NonceUse("n999", 1, expires=1009.0), now=999.0)


def test_client_without_qop_and_with_opaque() -> None:
    challenge = 'Digest realm="r", nonce="abc", opaque="op"'
    auth = parse_digest(authorization_for(challenge, DigestCredentials("u", "p"), "REFER", "sip:x@y"))
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


def test_a_trunk_realm_is_challenged_and_checked() -> None:
    server = DigestServer("sipbridge")
    challenge = server.challenge(realm="carrier.example")
    assert 'realm="carrier.example"' in challenge
    auth = authorization_for(challenge, DigestCredentials("a", "p"), "INVITE", "sip:x@y")
    assert server.verify(auth, "INVITE", "a", "p", realm="carrier.example").verdict is DigestVerdict.OK
    assert server.verify(auth, "INVITE", "a", "p").verdict is DigestVerdict.REJECTED  # answered for another realm
