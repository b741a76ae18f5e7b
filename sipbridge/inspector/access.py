"""Who may read the inspector: the holder of a LiveKit token with the SIP ``admin`` grant, signed with the node's
API key and secret (the grant that manages trunks and rules also sees their calls).

`AccessCheck.verdict` says 401 (no token, or one that is malformed, badly signed, expired or for another key), 403
(a good token without the grant) or 200, with the reason in words for the refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt
from livekit.api.access_token import TokenVerifier


@dataclass(frozen=True)
class Verdict:
    status: int
    """200, 401 or 403."""
    reason: str = ""
    expires: float | None = None
    """When the token lapses (Unix time), for a cookie holding it."""


class AccessCheck:
    def __init__(self, api_key: str, api_secret: str) -> None:
        self._verifier = TokenVerifier(api_key, api_secret)

    def verdict(self, token: str | None) -> Verdict:
        if not token:
            return Verdict(401, "a LiveKit token with the SIP admin grant is needed")
        try:
            claims = self._verifier.verify(token)
        except jwt.ExpiredSignatureError:
            return Verdict(401, "the token has expired")
        except jwt.InvalidIssuerError:
            return Verdict(401, "the token was issued for another API key")
        except (jwt.PyJWTError, ValueError, TypeError) as e:
            return Verdict(401, f"invalid token: {e}")
        if claims.sip is None or not claims.sip.admin:
            return Verdict(403, "the token lacks the SIP admin grant")
        expires = jwt.decode(token, options={"verify_signature": False}).get("exp")
        return Verdict(200, expires=float(expires) if isinstance(expires, int | float) else None)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None for any other scheme)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
