"""Access tokens for the SIP API: LiveKit JWTs signed with the node's API key and secret.

Trunk and dispatch-rule methods need the SIP ``admin`` grant, call methods the SIP ``call`` grant, as in
livekit-server. A missing, malformed, badly signed or expired token is ``unauthenticated``; a good token without the
grant is ``permission_denied``.
"""

from __future__ import annotations

from enum import Enum

import jwt
from livekit.api.access_token import Claims, TokenVerifier

from sipbridge.api.twirp import TwirpError


class Grant(Enum):
    ADMIN = "admin"
    CALL = "call"


class Authenticator:
    def __init__(self, api_key: str, api_secret: str) -> None:
        self._verifier = TokenVerifier(api_key, api_secret)

    def claims(self, authorization: str | None) -> Claims:
        if not authorization:
            raise TwirpError("unauthenticated", "no authorization header: send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TwirpError("unauthenticated", "the authorization header must be 'Bearer <token>'")
        try:
            return self._verifier.verify(token.strip())
        except jwt.ExpiredSignatureError:
            raise TwirpError("unauthenticated", "the access token has expired") from None
        except jwt.InvalidIssuerError:
            raise TwirpError("unauthenticated", "the access token was issued for another API key") from None
        except jwt.InvalidSignatureError:
            raise TwirpError("unauthenticated", "the access token's signature is invalid") from None
        except (jwt.PyJWTError, ValueError, TypeError) as e:
            raise TwirpError("unauthenticated", f"invalid access token: {e}") from None

    def require(self, authorization: str | None, grant: Grant) -> Claims:
        claims = self.claims(authorization)
        sip = claims.sip
        allowed = sip is not None and (sip.admin if grant is Grant.ADMIN else sip.call)
        if not allowed:
            raise TwirpError("permission_denied", f"the access token lacks the SIP '{grant.value}' grant")
        return claims
