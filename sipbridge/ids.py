"""Object IDs in LiveKit's form: a type prefix and 12 characters of the shortuuid alphabet (``ST_3kPq...``)."""

from __future__ import annotations

import secrets

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
SIZE = 12
SIP_TRUNK_PREFIX = "ST_"
SIP_DISPATCH_RULE_PREFIX = "SDR_"
SIP_CALL_PREFIX = "SCL_"
SIP_TRANSFER_PREFIX = "STR_"
NODE_PREFIX = "NE_"


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(SIZE))
