"""Where a node records the digest nonce uses it admitted, so that a captured answer cannot be sent again.

`sipbridge.sip.auth` checks an answer and names the use of its nonce (`NonceUse`); a call is admitted only when
the ledger says that use is fresh. Nodes that share ``api_secret`` accept each other's nonces (a front may send a
caller's answer to another node than the one that challenged), so with Redis configured the ledger lives there
and every node sees every use; a node without Redis keeps it in memory.
"""

from __future__ import annotations

import time
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from sipbridge.sip.auth import NonceCounts, NonceUse

SPENT = "spent"
"""What the Redis ledger stores for a nonce answered without ``qop``: no later use of it is fresh."""
KEY_PREFIX = "sipbridge:digest_nonce:"

# KEYS[1]: the nonce's key. ARGV[1]: the answer's count, or "spent". ARGV[2]: milliseconds to keep the record.
# Fresh means: never used (without qop), or a count above every count taken so far and not spent (with qop).
_CLAIM = """
local taken = redis.call('GET', KEYS[1])
if taken then
    if ARGV[1] == 'spent' or taken == 'spent' or tonumber(taken) >= tonumber(ARGV[1]) then
        return 0
    end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class NonceLedgerError(Exception):
    """The shared ledger cannot be reached: the call cannot be admitted safely (SIP 503)."""


class NonceLedger(Protocol):
    async def claim(self, use: NonceUse) -> bool:
        """Record the use; False when it is a replay. Raises NonceLedgerError when the record is unreachable."""
        ...

    async def close(self) -> None: ...


class MemoryNonceLedger:
    """This node's own record (standalone node without Redis)."""

    def __init__(self) -> None:
        self._counts = NonceCounts()

    async def claim(self, use: NonceUse) -> bool:
        return self._counts.claim(use, time.time())

    async def close(self) -> None:
        return None


class RedisNonceLedger:
    """A record shared by every node on one Redis: one key per nonce, expiring with the nonce."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self._claim = client.register_script(_CLAIM)

    async def claim(self, use: NonceUse) -> bool:
        keep_ms = max(1, int((use.expires - time.time()) * 1000) + 1000)
        value = SPENT if use.count is None else str(use.count)
        try:
            fresh = await self._claim(keys=[KEY_PREFIX + use.nonce], args=[value, keep_ms])
        except RedisError as e:
            raise NonceLedgerError(f"digest nonce ledger unavailable: {e}") from e
        return bool(fresh)

    async def close(self) -> None:
        await self._redis.aclose()
