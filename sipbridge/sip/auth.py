"""HTTP Digest authentication for SIP (RFC 7616, RFC 2617, RFC 3261 §22): challenger and answerer.

Nonces are self-verifying (timestamp + HMAC), so the challenger keeps no state per challenge. What it must
remember is which answers it has already taken, or a captured ``Authorization`` header could be sent again:
`DigestServer.verify` only checks an answer and says which use of the nonce it makes (`NonceUse`); the caller
records that use in a ledger (`NonceCounts` here, or one shared by the nodes of a cluster) and admits the
request only when the use is fresh. The rule (docs/security.md): an answer with ``qop=auth`` must carry a
nonce count higher than every count already taken for its nonce; an answer without ``qop`` (RFC 2069 style,
where the count is not part of the hash) spends its nonce, so it is good once.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import SipParseError
from .syntax import bounded_int, parse_params, quote_string, split_outside_quotes

_HASHES = {"MD5": "md5", "SHA-256": "sha256"}
ALGORITHMS = frozenset([*_HASHES, *(f"{name}-sess" for name in _HASHES)])
"""What we answer when challenged (RFC 7616 §3.3): each hash, plain or ``-sess``."""
SERVER_ALGORITHMS = frozenset(_HASHES)
"""What we challenge with: the plain forms; an answer must use the algorithm of our challenge."""
NONCE_COUNT_DIGITS = 8
_CANONICAL = {name.upper(): name for name in ALGORITHMS}


def _hash(algorithm: str, text: str) -> str:
    return hashlib.new(_HASHES[algorithm.removesuffix("-sess")], text.encode()).hexdigest()


def parse_digest(value: str) -> dict[str, str]:
    """Parse ``Digest k=v, k="v"`` into lower-cased keys. Raises SipParseError for other schemes."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise SipParseError(f"unsupported auth scheme {scheme!r}")
    params: dict[str, str] = {}
    for item in split_outside_quotes(rest, ","):
        for name, val in parse_params(item).items():
            params[name] = val or ""
    return params


def _algorithm(params: dict[str, str]) -> str:
    name = params.get("algorithm", "MD5")
    algorithm = _CANONICAL.get(name.upper())
    if algorithm is None:
        raise SipParseError(f"unsupported digest algorithm {name}")
    return algorithm


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None,
    nc: str = "",
    cnonce: str = "",
) -> str:
    ha1 = _hash(algorithm, f"{username}:{realm}:{password}")
    if algorithm.endswith("-sess"):
        ha1 = _hash(algorithm, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop:
        return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")


@dataclass(frozen=True)
class DigestCredentials:
    username: str
    password: str


def authorization_for(
    challenge_value: str,
    credentials: DigestCredentials,
    method: str,
    uri: str,
    *,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """The Authorization/Proxy-Authorization value answering a WWW-/Proxy-Authenticate challenge."""
    challenge = parse_digest(challenge_value)
    algorithm = _algorithm(challenge)
    realm = challenge.get("realm", "")
    nonce = challenge.get("nonce", "")
    offered_qop = {q.strip().lower() for q in challenge.get("qop", "").split(",") if q.strip()}
    qop = "auth" if "auth" in offered_qop else None
    cnonce = cnonce or os.urandom(8).hex()
    nc_text = f"{nc:0{NONCE_COUNT_DIGITS}x}"
    response = digest_response(
        algorithm=algorithm,
        username=credentials.username,
        realm=realm,
        password=credentials.password,
        method=method,
        uri=uri,
        nonce=nonce,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce,
    )
    parts = [
        f"username={quote_string(credentials.username)}",
        f"realm={quote_string(realm)}",
        f"nonce={quote_string(nonce)}",
        f"uri={quote_string(uri)}",
        f"response={quote_string(response)}",
        f"algorithm={algorithm}",
    ]
    if qop or algorithm.endswith("-sess"):
        parts.append(f"cnonce={quote_string(cnonce)}")
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}"]
    if "opaque" in challenge:
        parts.append(f"opaque={quote_string(challenge['opaque'])}")
    return "Digest " + ", ".join(parts)


class DigestVerdict(enum.Enum):
    OK = "ok"
    MISSING = "missing"  # no credentials: challenge
    STALE = "stale"  # good password, but the nonce is too old or this use of it is not fresh: challenge anew
    REJECTED = "rejected"  # wrong password or user, malformed answer, forged nonce, another algorithm


@dataclass(frozen=True)
class NonceUse:
    """The use of a nonce an answer makes, to be recorded before the request is admitted."""

    nonce: str
    count: int | None
    """The answer's nonce count (``qop=auth``); None for an answer without ``qop``, which spends the nonce."""
    expires: float
    """When the nonce's lifetime ends: after it, the nonce is refused anyway and the use can be forgotten."""


@dataclass(frozen=True)
class DigestCheck:
    verdict: DigestVerdict
    use: NonceUse | None = None
    """Set with `DigestVerdict.OK`: the request is admitted only if this use is fresh (`NonceCounts.claim`)."""


class DigestServer:
    """Challenges and verifies requests for one realm.

    Nonces carry the wall-clock time they were issued, so that every node of a cluster (same ``secret``) can
    judge their age; ``clock`` is that time (injected, so expiry is testable).
    """

    def __init__(
        self,
        realm: str,
        *,
        secret: bytes | None = None,
        nonce_lifetime: float = 300.0,
        algorithm: str = "MD5",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if algorithm not in SERVER_ALGORITHMS:
            raise ValueError(f"unsupported digest algorithm {algorithm}")
        self.realm = realm
        self.algorithm = algorithm
        self._secret = secret or os.urandom(32)
        self.nonce_lifetime = nonce_lifetime
        self._clock = clock

    def challenge(self, *, stale: bool = False, realm: str | None = None) -> str:
        """A WWW-/Proxy-Authenticate value; ``realm`` names another realm than ours (a trunk's ``auth_realm``)."""
        nonce = f"{int(self._clock() * 1000)}.{os.urandom(6).hex()}"
        nonce += "." + self._sign(nonce)
        value = (
            f"Digest realm={quote_string(realm or self.realm)}, nonce={quote_string(nonce)}, "
            f'algorithm={self.algorithm}, qop="auth"'
        )
        return value + (", stale=true" if stale else "")

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()[:32]

    def _nonce_time(self, nonce: str) -> float | None:
        """When we issued this nonce, or None if we did not issue it."""
        body, _, signature = nonce.rpartition(".")
        if not body or not _same(signature, self._sign(body)):
            return None
        millis = bounded_int(body.partition(".")[0], 10**16)
        return millis / 1000 if millis is not None else None

    def verify(
        self, header_value: str | None, method: str, username: str, password: str, realm: str | None = None
    ) -> DigestCheck:
        """Check an Authorization header against the expected user and password (in ``realm``, else ours)."""
        realm = realm or self.realm
        if not header_value:
            return DigestCheck(DigestVerdict.MISSING)
        try:
            params = parse_digest(header_value)
            algorithm = _algorithm(params)
        except SipParseError:
            return DigestCheck(DigestVerdict.REJECTED)
        nonce = params.get("nonce", "")
        issued = self._nonce_time(nonce)
        if (
            issued is None
            or algorithm != self.algorithm
            or params.get("username") != username
            or params.get("realm") != realm
        ):
            return DigestCheck(DigestVerdict.REJECTED)
        qop = params.get("qop") or None
        count = _nonce_count(params.get("nc", "")) if qop else None
        if qop is not None and (qop != "auth" or count is None or not params.get("cnonce")):
            return DigestCheck(DigestVerdict.REJECTED)
        expected = digest_response(
            algorithm=algorithm,
            username=username,
            realm=realm,
            password=password,
            method=method,
            uri=params.get("uri", ""),
            nonce=nonce,
            qop=qop,
            nc=params.get("nc", ""),
            cnonce=params.get("cnonce", ""),
        )
        if not _same(expected, params.get("response", "").lower()):
            return DigestCheck(DigestVerdict.REJECTED)
        if self._clock() - issued > self.nonce_lifetime:
            return DigestCheck(DigestVerdict.STALE)
        return DigestCheck(DigestVerdict.OK, NonceUse(nonce, count, issued + self.nonce_lifetime))


def _same(a: str, b: str) -> bool:
    """Constant-time comparison of any two strings (`hmac.compare_digest` refuses non-ASCII text)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def _nonce_count(text: str) -> int | None:
    """RFC 7616 §3.4: ``nc`` is exactly eight hex digits."""
    if len(text) != NONCE_COUNT_DIGITS or not text.isascii():
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


class NonceCounts:
    """One node's record of the nonce uses it took: the replay check for a node that shares it with nobody.

    Bounded: a use is kept until its nonce expires, and at most ``capacity`` are kept (the oldest go first).
    Only answers that passed `DigestServer.verify` reach it, so nobody without a password can fill it.
    """

    def __init__(self, capacity: int = 65536) -> None:
        self._capacity = capacity
        self._taken: dict[str, tuple[int | None, float]] = {}  # nonce -> (highest count or None = spent, expiry)

    def __len__(self) -> int:
        return len(self._taken)

    def claim(self, use: NonceUse, now: float) -> bool:
        """Record the use; False (a replay) when it is not fresh."""
        previous = self._taken.get(use.nonce)
        if previous is not None and now <= previous[1]:
            count = previous[0]
            if use.count is None or count is None or use.count <= count:
                return False
        self._taken.pop(use.nonce, None)
        self._taken[use.nonce] = (use.count, use.expires)
        self._forget(now)
        return True

    def _forget(self, now: float) -> None:
        if len(self._taken) <= self._capacity:
            return
        for nonce, (_, expires) in list(self._taken.items()):
            if expires < now:
                del self._taken[nonce]
        while len(self._taken) > self._capacity:
            del self._taken[next(iter(self._taken))]
