"""A Twirp server over aiohttp: routing, JSON and protobuf bodies, and Twirp's error format.

Twirp (https://twitchtv.github.io/twirp/docs/spec_v7.html) is what livekit-server speaks: POST
``/twirp/<package>.<Service>/<Method>`` with an ``application/protobuf`` body (the `lk` CLI and the server SDKs) or an
``application/json`` body (curl). Errors are JSON ``{"code", "msg", "meta"}`` with the HTTP status of their code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from sipbridge.failure_budget import FailureBudget
from sipbridge.repeated_log import LoopRepeatedEventLog

log = logging.getLogger(__name__)

HTTP_STATUS = {
    "canceled": 408,
    "unknown": 500,
    "invalid_argument": 400,
    "malformed": 400,
    "deadline_exceeded": 408,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "resource_exhausted": 429,
    "failed_precondition": 412,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
}
JSON = "application/json"
PROTOBUF = "application/protobuf"
MAX_BODY = 1 << 20
_UNAUTHORISED = ("unauthenticated", "permission_denied", "resource_exhausted")
DECODE_ON_LOOP_LIMIT = 64 << 10
"""Bodies larger than this are decoded in a worker thread, so the calls' 20 ms ticks go on meanwhile."""


class TwirpError(Exception):
    def __init__(self, code: str, msg: str, meta: Mapping[str, str] | None = None) -> None:
        if code not in HTTP_STATUS:
            raise ValueError(f"not a Twirp error code: {code}")
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.meta = dict(meta or {})

    def response(self) -> web.Response:
        body: dict[str, Any] = {"code": self.code, "msg": self.msg}
        if self.meta:
            body["meta"] = self.meta
        return web.json_response(body, status=HTTP_STATUS[self.code])


Handler = Callable[[Any, web.Request], Awaitable[Message]]
Authorizer = Callable[[web.Request], None]
"""Checks the request's headers (its token) and raises TwirpError; it runs before the body is read."""


@dataclass(frozen=True)
class Method:
    name: str
    request_type: type[Message]
    handler: Handler
    authorize: Authorizer


class TwirpService:
    """Serves one Twirp service (e.g. ``livekit.SIP``) from a table of methods.

    What a caller without a valid token can make the node do is kept small: the route and the token (headers
    only) are checked before a byte of the body is read, a body over ``max_body`` is refused unread, and a
    source whose requests keep failing authentication is answered ``resource_exhausted`` without even that
    (`FailureBudget`). Bodies that are large for their kind are decoded off the event loop, which carries calls.
    """

    def __init__(
        self,
        service: str,
        methods: list[Method],
        *,
        max_body: int = MAX_BODY,
        failures: FailureBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = f"/twirp/{service}/"
        self.methods = {m.name: m for m in methods}
        self.max_body = max_body
        self._failures = failures or FailureBudget()
        self._clock = clock
        self._refused = LoopRepeatedEventLog(log, "unauthorised API requests", level=logging.INFO)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", self.prefix + "{method}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        try:
            return await self._handle(request)
        except TwirpError as e:
            if e.code in _UNAUTHORISED:
                self._refused.note_now(request.remote or "?", f"{request.path}: {e.code} {e.msg}")
            else:
                log.info("twirp %s: %s %s", request.path, e.code, e.msg)
            return e.response()
        except Exception:
            log.exception("twirp %s: internal error", request.path)
            return TwirpError("internal", "internal error").response()

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        if request.method != "POST":
            raise TwirpError("bad_route", f"unsupported method {request.method} (only POST is allowed)")
        method = self.methods.get(name)
        if method is None:
            raise TwirpError("bad_route", f"no handler for path {request.path}")
        self._authorize(method, request)
        content_type = request.content_type
        if content_type not in (JSON, PROTOBUF):
            raise TwirpError("bad_route", f"unexpected Content-Type: {content_type!r}")
        message = await self._read(method.request_type, request, content_type)
        reply = await method.handler(message, request)
        return encode(reply, content_type)

    def _authorize(self, method: Method, request: web.Request) -> None:
        source, now = request.remote or "?", self._clock()
        if self._failures.exhausted(source, now):
            raise TwirpError("resource_exhausted", "too many failed requests from this address; try again later")
        try:
            method.authorize(request)
        except TwirpError as e:
            if e.code in _UNAUTHORISED:
                self._failures.spend(source, now)
            raise

    async def _read(self, cls: type[Message], request: web.Request, content_type: str) -> Message:
        too_large = TwirpError("malformed", f"the request body is larger than the limit of {self.max_body} bytes")
        if request.content_length is not None and request.content_length > self.max_body:
            raise too_large
        body = bytearray()
        async for chunk in request.content.iter_chunked(1 << 16):
            body += chunk
            if len(body) > self.max_body:
                raise too_large
        if len(body) > DECODE_ON_LOOP_LIMIT:
            return await asyncio.to_thread(decode, cls, bytes(body), content_type)
        return decode(cls, bytes(body), content_type)


def decode(cls: type[Message], body: bytes, content_type: str) -> Message:
    """Parse a request body; a body that does not parse is Twirp ``malformed``."""
    message = cls()
    try:
        if content_type == PROTOBUF:
            message.ParseFromString(body)
        else:
            json_format.Parse(body.decode() if body.strip() else "{}", message)
    except (DecodeError, json_format.ParseError, UnicodeDecodeError) as e:
        raise TwirpError("malformed", f"the request body could not be decoded as {cls.__name__}: {e}") from e
    return message


def encode(message: Message, content_type: str) -> web.Response:
    if content_type == PROTOBUF:
        return web.Response(body=message.SerializeToString(), content_type=PROTOBUF)
    text = json_format.MessageToJson(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return web.Response(text=text, content_type=JSON)
