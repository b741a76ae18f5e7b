"""Reading what `lk sip ...` prints, for tests that drive the SIP API through the real CLI."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import redis
from google.protobuf import json_format
from google.protobuf.message import Message

from .processes import RedisServer

Response = TypeVar("Response", bound=Message)
SIP_TABLES = ("sip_trunk", "sip_inbound_trunk", "sip_outbound_trunk", "sip_dispatch_rule")


def clear_sip_tables(server: RedisServer) -> None:
    """Empty the SIP hashes only: livekit-server keeps its own state in the same Redis."""
    client = redis.Redis(host=server.host, port=server.port)
    try:
        client.delete(*SIP_TABLES)
    finally:
        client.close()


def created_id(output: str) -> str:
    """The ID `lk sip ... create/update` prints (``SIPTrunkID: ST_...`` or ``SIPDispatchRuleID: SDR_...``)."""
    match = re.search(r"(?:SIPTrunkID|SIPDispatchRuleID): (\S+)", output)
    assert match, f"no ID in lk output: {output!r}"
    return match.group(1)


def listed(output: str, response_type: type[Response]) -> list[Any]:
    """The items of `lk sip ... list --json` (protobuf JSON) as protobuf messages."""
    response = json_format.Parse(output, response_type())
    return list(response.items)  # type: ignore[attr-defined]
