"""The calling side of psrpc unary calls: publish a request, pick a claiming server, await its response.

A client listens on its own CLAIM and RES channels (named after its client ID). A call publishes the request,
waits up to the selection timeout for claims (taking the first, or the highest affinity), announces the winner on
the method's claim-response channel, and waits for the response until the call's timeout. Failures are
`PsrpcError`s with psrpc's codes and wording, so callers see what a Go caller would see.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TypeVar

from google.protobuf.message import DecodeError, Message
from redis.exceptions import RedisError

from sipbridge.ids import new_id
from sipbridge.psrpc import channels
from sipbridge.psrpc.bus import RedisBus, Subscription
from sipbridge.psrpc.channels import Topic
from sipbridge.psrpc.errors import ErrorCode, PsrpcError
from sipbridge.psrpc.wire import ClaimRequest, ClaimResponse, Request, Response

R = TypeVar("R", bound=Message)

DEFAULT_TIMEOUT = 3.0  # psrpc's default request timeout
SELECTION_TIMEOUT = 1.0  # how long psrpc waits for claims


class RPCClient:
    """Calls methods of one psrpc service (e.g. ``IOInfo``) on a bus, as client `client_id`."""

    def __init__(self, bus: RedisBus, service: str, *, client_id: str | None = None) -> None:
        self.bus = bus
        self.service = service
        self.client_id = client_id or new_id("CLI_")
        self._pending: dict[str, asyncio.Queue[ClaimRequest | Response]] = {}
        self._subscriptions: list[Subscription[ClaimRequest] | Subscription[Response]] = []
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        """Subscribe to this client's CLAIM and RES channels (done by the first request otherwise)."""
        async with self._starting:
            if not self._subscriptions:
                self._subscriptions = [
                    await self.bus.subscribe(
                        channels.claim_request(self.service, self.client_id), ClaimRequest, self._on_reply
                    ),
                    await self.bus.subscribe(channels.response(self.service, self.client_id), Response, self._on_reply),
                ]

    async def close(self) -> None:
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            await subscription.close()

    async def request(
        self,
        method: str,
        request: Message,
        response_type: type[R],
        *,
        topic: Topic = (),
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (it is the request's expiry, sent to the server)
        selection_timeout: float = SELECTION_TIMEOUT,
        accept_first: bool = True,
        metadata: Mapping[str, str] | None = None,
    ) -> R:
        """Call `method` on `topic` and return its response; raises `PsrpcError` on any failure.

        `accept_first` takes the first claim at once (every SIP method works so); otherwise the highest affinity
        claimed within `selection_timeout` wins.
        """
        loop = asyncio.get_running_loop()
        request_id = new_id("REQ_")
        now = time.time_ns()
        envelope = Request(
            request_id=request_id,
            client_id=self.client_id,
            sent_at=now,
            expiry=now + int(timeout * 1e9),
            raw_request=request.SerializeToString(),
            metadata=metadata or {},
        )
        replies: asyncio.Queue[ClaimRequest | Response] = asyncio.Queue()
        self._pending[request_id] = replies
        try:
            await self.start()
            await self.bus.publish(channels.request(self.service, method, topic), envelope)
            deadline = loop.time() + timeout
            server_id = await _select(replies, min(deadline, loop.time() + selection_timeout), accept_first)
            await self.bus.publish(
                channels.claim_response(self.service, method, topic),
                ClaimResponse(request_id=request_id, server_id=server_id),
            )
            response = await _await_response(replies, deadline)
        except RedisError as exc:
            raise PsrpcError(ErrorCode.INTERNAL, f"redis: {exc}") from exc
        finally:
            del self._pending[request_id]
        try:
            return response_type.FromString(response.raw_response)
        except DecodeError as exc:
            raise PsrpcError(ErrorCode.MALFORMED_RESULT, str(exc)) from exc

    def _on_reply(self, reply: ClaimRequest | Response) -> None:
        replies = self._pending.get(reply.request_id)
        if replies is not None:
            replies.put_nowait(reply)


async def _select(replies: asyncio.Queue[ClaimRequest | Response], until: float, accept_first: bool) -> str:
    """The chosen server's ID; an error response during selection (a malformed request) is raised if no one won."""
    loop = asyncio.get_running_loop()
    best, best_affinity, claims = "", 0.0, 0
    error: PsrpcError | None = None
    while (remaining := until - loop.time()) > 0:
        try:
            reply = await asyncio.wait_for(replies.get(), remaining)
        except TimeoutError:
            break
        if isinstance(reply, ClaimRequest):
            claims += 1
            if accept_first:
                return reply.server_id
            if reply.affinity > best_affinity:
                best, best_affinity = reply.server_id, reply.affinity
        elif reply.error:
            error = _error(reply)
    if best:
        return best
    if error is not None:
        raise error
    if claims:
        raise PsrpcError(ErrorCode.UNAVAILABLE, f"no servers available (received {claims} responses)")
    raise PsrpcError(ErrorCode.UNAVAILABLE, "no response from servers")


async def _await_response(replies: asyncio.Queue[ClaimRequest | Response], until: float) -> Response:
    """The first response (late claims are ignored); its error raised as a `PsrpcError`."""
    loop = asyncio.get_running_loop()
    while (remaining := until - loop.time()) > 0:
        try:
            reply = await asyncio.wait_for(replies.get(), remaining)
        except TimeoutError:
            break
        if isinstance(reply, Response):
            if reply.error:
                raise _error(reply)
            return reply
    raise PsrpcError(ErrorCode.DEADLINE_EXCEEDED, "request timed out")


def _error(response: Response) -> PsrpcError:
    return PsrpcError(response.code or ErrorCode.UNKNOWN, response.error, response.error_details)
