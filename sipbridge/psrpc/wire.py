"""psrpc's own messages (proto package `internal`) and the `Msg` envelope every Redis payload is wrapped in.

Field numbers follow psrpc's `internal.proto`. The legacy `google.protobuf.Any` payload fields (Request 6,
Response 4) are left undeclared: psrpc carries payloads in `raw_request` / `raw_response`, and a peer that
still sends the legacy fields has them kept as unknown fields, not misread.
"""

from __future__ import annotations

import logging
from typing import Annotated, TypeVar

from google.protobuf import any_pb2
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer, ScalarMap
from google.protobuf.message import DecodeError, Message

from sipbridge.psrpc.schema import F, message

log = logging.getLogger(__name__)

TYPE_URL_PREFIX = "type.googleapis.com/"
M = TypeVar("M", bound=Message)


@message("internal")
class Msg(Message):
    type_url: Annotated[str, F(1)]
    value: Annotated[bytes, F(2)]
    channel: Annotated[str, F(3)]


@message("internal")
class Request(Message):
    request_id: Annotated[str, F(1)]
    client_id: Annotated[str, F(2)]
    sent_at: Annotated[int, F(3, kind="int64")]  # Unix nanoseconds
    expiry: Annotated[int, F(4, kind="int64")]  # Unix nanoseconds, absolute
    multi: Annotated[bool, F(5)]
    metadata: Annotated[ScalarMap[str, str], F(7)]
    raw_request: Annotated[bytes, F(8)]


@message("internal")
class Response(Message):
    request_id: Annotated[str, F(1)]
    server_id: Annotated[str, F(2)]
    sent_at: Annotated[int, F(3, kind="int64")]
    error: Annotated[str, F(5)]
    code: Annotated[str, F(6)]
    raw_response: Annotated[bytes, F(7)]
    error_details: Annotated[RepeatedCompositeFieldContainer[any_pb2.Any], F(8)]


@message("internal")
class ClaimRequest(Message):
    request_id: Annotated[str, F(1)]
    server_id: Annotated[str, F(2)]
    affinity: Annotated[float, F(3, kind="float")]


@message("internal")
class ClaimResponse(Message):
    request_id: Annotated[str, F(1)]
    server_id: Annotated[str, F(2)]


def type_url(message_type: type[Message]) -> str:
    return TYPE_URL_PREFIX + message_type.DESCRIPTOR.full_name


def wrap(msg: Message) -> bytes:
    """The bytes to PUBLISH: `Msg{type_url, value}`; `channel` stays empty on Redis."""
    return Msg(type_url=type_url(type(msg)), value=msg.SerializeToString()).SerializeToString()


def unwrap(payload: bytes, expected: type[M]) -> M | None:
    """The payload's message if it is an `expected`, else None (logged): a channel carries one type only."""
    try:
        envelope = Msg.FromString(payload)
        if envelope.type_url != type_url(expected):
            log.warning("psrpc: dropped a %r where %s was expected", envelope.type_url, expected.DESCRIPTOR.full_name)
            return None
        return expected.FromString(envelope.value)
    except DecodeError:
        log.warning("psrpc: dropped an undecodable payload where %s was expected", expected.DESCRIPTOR.full_name)
        return None
