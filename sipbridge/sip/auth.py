"""HTTP Digest authentication for SIP (RFC 7616, RFC 2617, RFC 3261 §22): challenger and answerer.

Nonces are self-verifying (timestamp + HMAC), so the server keeps no per-challenge state except the nonce
counts already seen, which is what rejects replays.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
from dataclasses import dataclass

from .errors import SipParseError
from .syntax import parse_params, quote_string, split_outside_quotes

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def _hash(algorithm: str, text: str) -> str:
    return ALGORITHMS[algorithm](text.encode()).hexdigest()


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
    algorithm = params.get("algorithm", "MD5").upper()
    if algorithm not in ALGORITHMS:
        raise SipParseError(f"unsupported digest algorithm {algorithm}")
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
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop:
        return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def authorization_for(
    challenge_value: str,
    credentials: Credentials,
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
    nc_text = f"{nc:08x}"
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
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f"cnonce={quote_string(cnonce)}"]
    if "opaque" in challenge:
        parts.append(f"opaque={quote_string(challenge['opaque'])}")
    return "Digest " + ", ".join(parts)


class Verdict(enum.Enum):
    OK = "ok"
    MISSING = "missing"  # no credentials: challenge
    STALE = "stale"  # good password, old nonce: challenge again with stale=true
    REJECTED = "rejected"  # wrong password, wrong user, replayed nonce count, forged nonce


class DigestServer:
    """Challenges and verifies requests for one realm. ``now`` is passed in, so expiry is testable."""

    def __init__(
        self,
        realm: str,
        *,
        secret: bytes | None = None,
        nonce_lifetime: float = 300.0,
        algorithm: str = "MD5",
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unsupported digest algorithm {algorithm}")
        self.realm = realm
        self.algorithm = algorithm
        self._secret = secret or os.urandom(32)
        self._lifetime = nonce_lifetime
        self._seen_nc: dict[str, int] = {}

    def challenge(self, now: float, *, stale: bool = False) -> str:
        nonce = f"{int(now * 1000)}.{os.urandom(6).hex()}"
        nonce += "." + self._sign(nonce)
        value = (
            f"Digest realm={quote_string(self.realm)}, nonce={quote_string(nonce)}, "
            f'algorithm={self.algorithm}, qop="auth"'
        )
        return value + (", stale=true" if stale else "")

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()[:32]

    def _nonce_time(self, nonce: str) -> float | None:
        body, _, signature = nonce.rpartition(".")
        if not body or not hmac.compare_digest(signature, self._sign(body)):
            return None
        millis = body.partition(".")[0]
        return int(millis) / 1000 if millis.isascii() and millis.isdigit() else None

    def verify(self, header_value: str | None, method: str, username: str, password: str, now: float) -> Verdict:
        """Check an Authorization header against the expected user and password."""
        if not header_value:
            return Verdict.MISSING
        try:
            params = parse_digest(header_value)
            algorithm = _algorithm(params)
        except SipParseError:
            return Verdict.REJECTED
        nonce = params.get("nonce", "")
        issued = self._nonce_time(nonce)
        if issued is None or params.get("username") != username or params.get("realm") != self.realm:
            return Verdict.REJECTED
        qop = params.get("qop") or None
        if qop not in (None, "auth"):
            return Verdict.REJECTED
        expected = digest_response(
            algorithm=algorithm,
            username=username,
            realm=self.realm,
            password=password,
            method=method,
            uri=params.get("uri", ""),
            nonce=nonce,
            qop=qop,
            nc=params.get("nc", ""),
            cnonce=params.get("cnonce", ""),
        )
        if not hmac.compare_digest(expected, params.get("response", "").lower()):
            return Verdict.REJECTED
        if now - issued > self._lifetime:
            return Verdict.STALE
        return self._check_replay(nonce, params.get("nc", ""), now)

    def _check_replay(self, nonce: str, nc_text: str, now: float) -> Verdict:
        try:
            nc = int(nc_text, 16) if nc_text else 0
        except ValueError:
            return Verdict.REJECTED
        last = self._seen_nc.get(nonce)
        if last is not None and nc <= last:
            return Verdict.REJECTED
        self._seen_nc[nonce] = nc
        self._forget_expired(now)
        return Verdict.OK

    def _forget_expired(self, now: float) -> None:
        if len(self._seen_nc) < 1024:
            return
        for nonce in list(self._seen_nc):
            issued = self._nonce_time(nonce)
            if issued is None or now - issued > self._lifetime:
                del self._seen_nc[nonce]
