"""The serving side of psrpc unary calls: request → claim → claim response → handler → response.

For each registered (method, topic) a server subscribes to the method's request channel (as a queue: one process
per request, by the bus's lock) and to its claim-response channel. A request it takes is dropped once past its
expiry; otherwise the server claims it on the caller's CLAIM channel and runs the handler only if the caller then
names this server on the claim-response channel. The handler runs under the request's deadline.

A server that takes a request but does not claim it (its affinity callback says no) leaves the caller without
any claim, so the call fails with "no response from servers": no other node gets that request. A node that
cannot take work must therefore `pause()` its registration (leave the queue) rather than decline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.message import DecodeError, Message

from sipbridge.ids import new_id
from sipbridge.psrpc import channels
from sipbridge.psrpc.bus import RedisBus, Subscription
from sipbridge.psrpc.channels import Topic
from sipbridge.psrpc.errors import ErrorCode, PsrpcError
from sipbridge.psrpc.wire import ClaimRequest, ClaimResponse, Request, Response

log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=Message)


@dataclass(frozen=True)
class Incoming:
    """What a handler may want to know about the call besides its request."""

    request_id: str
    client_id: str
    deadline: float  # Unix time (seconds) the caller stops waiting; the handler is cancelled then
    metadata: Mapping[str, str]


Handler = Callable[[Req, Incoming], Awaitable[Message | None]]
Affinity = Callable[[Req], float]
"""Per request: how well this server fits it (claims carry it); a negative value means "do not claim"."""


class Registration(Generic[Req]):
    """One (method, topic) a server handles: pause/resume its queue membership, or close it for good."""

    def __init__(
        self,
        server: RPCServer,
        method: str,
        topic: Topic,
        request_type: type[Req],
        response_type: type[Message],
        handler: Handler[Req],
        queue: bool,
        affinity: Affinity[Req] | None,
    ) -> None:
        self.server = server
        self.method = method
        self.topic = topic
        self._request_type = request_type
        self._response_type = response_type
        self._handler = handler
        self._queue = queue
        self._affinity = affinity
        self._requests: Subscription[Request] | None = None
        self._claim_responses: Subscription[ClaimResponse] | None = None
        self._claims: dict[str, asyncio.Future[str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._membership = asyncio.Lock()  # pause/resume/close one at a time
        self._closed = False

    @property
    def paused(self) -> bool:
        return self._requests is None

    async def _start(self) -> None:
        bus, service = self.server.bus, self.server.service
        self._claim_responses = await bus.subscribe(
            channels.claim_response(service, self.method, self.topic), ClaimResponse, self._on_claim_response
        )
        await self.resume()

    async def pause(self) -> None:
        """Leave the request queue: other servers get the requests until `resume()`. Taken requests finish."""
        async with self._membership:
            requests, self._requests = self._requests, None
            if requests is not None:
                await requests.close()

    async def resume(self) -> None:
        """Join the request queue again (returns once subscribed)."""
        async with self._membership:
            if self._closed:
                raise RuntimeError(f"{self.server.service}.{self.method} registration is closed")
            if self._requests is None:
                self._requests = await self.server.bus.subscribe(
                    channels.request(self.server.service, self.method, self.topic),
                    Request,
                    self._on_request,
                    queue=self._queue,
                )

    async def close(self) -> None:
        """Stop taking requests and deregister once the requests already taken are answered or expired."""
        self._closed = True
        await self.pause()
        # A handler may close its own registration (a call ending in its transfer): do not wait for it.
        taken = [task for task in self._tasks if task is not asyncio.current_task()]
        if taken:
            await asyncio.gather(*taken, return_exceptions=True)
        if self._claim_responses is not None:
            await self._claim_responses.close()
            self._claim_responses = None
        self.server._forget(self)

    def _on_request(self, request: Request) -> None:
        task = asyncio.create_task(self._handle(request), name=f"psrpc {self.method} {request.request_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_claim_response(self, claim: ClaimResponse) -> None:
        waiting = self._claims.get(claim.request_id)
        if waiting is not None and not waiting.done():
            waiting.set_result(claim.server_id)

    async def _handle(self, request: Request) -> None:
        try:
            await self._serve(request)
        except Exception:  # Redis failed, or the affinity callback: the caller will time out
            log.exception("psrpc: %s %s could not be served", self.method, request.request_id)

    async def _serve(self, request: Request) -> None:
        remaining = (request.expiry - time.time_ns()) / 1e9
        if remaining <= 0:
            log.debug("psrpc: %s %s arrived expired, dropped", self.method, request.request_id)
            return
        try:
            message = self._request_type.FromString(request.raw_request)
        except DecodeError as exc:
            await self._respond(request, error=PsrpcError(ErrorCode.MALFORMED_REQUEST, str(exc)))
            return
        affinity = 1.0 if self._affinity is None else self._affinity(message)
        if affinity < 0 or not await self._claim(request, affinity):
            return
        incoming = Incoming(request.request_id, request.client_id, request.expiry / 1e9, dict(request.metadata))
        try:
            response = await self._run(message, incoming)
        except PsrpcError as exc:
            await self._respond(request, error=exc)
        else:
            await self._respond(request, response=response)

    async def _claim(self, request: Request, affinity: float) -> bool:
        """Claim the request and wait (until its expiry) for the caller's choice; True if it chose this server."""
        chosen: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._claims[request.request_id] = chosen
        try:
            claim = ClaimRequest(request_id=request.request_id, server_id=self.server.server_id, affinity=affinity)
            await self.server.bus.publish(channels.claim_request(self.server.service, request.client_id), claim)
            winner = await asyncio.wait_for(chosen, (request.expiry - time.time_ns()) / 1e9)
        except TimeoutError:
            return False
        finally:
            del self._claims[request.request_id]
        return winner == self.server.server_id

    async def _run(self, message: Req, incoming: Incoming) -> Message | None:
        """The handler's response, with every failure turned into the `PsrpcError` the caller will see."""
        loop = asyncio.get_running_loop()
        deadline = asyncio.timeout_at(loop.time() + incoming.deadline - time.time())
        try:
            async with deadline:
                response = await self._handler(message, incoming)
        except PsrpcError:
            raise
        except Exception as exc:
            if deadline.expired():
                raise PsrpcError(ErrorCode.DEADLINE_EXCEEDED, "request timed out") from exc
            log.exception("psrpc: %s handler failed", self.method)
            raise PsrpcError(ErrorCode.UNKNOWN, str(exc) or type(exc).__name__) from exc
        if response is not None and not isinstance(response, self._response_type):
            log.error("psrpc: %s handler returned a %s", self.method, type(response).__name__)
            raise PsrpcError(ErrorCode.INTERNAL, f"handler returned {type(response).__name__}")
        return response

    async def _respond(
        self, request: Request, *, response: Message | None = None, error: PsrpcError | None = None
    ) -> None:
        reply = Response(request_id=request.request_id, server_id=self.server.server_id, sent_at=time.time_ns())
        if error is not None:
            reply.error = error.message or error.code
            reply.code = error.code
            reply.error_details.extend(error.details)
        elif response is not None:
            reply.raw_response = response.SerializeToString()
        await self.server.bus.publish(channels.response(self.server.service, request.client_id), reply)


class RPCServer:
    """Serves methods of one psrpc service (e.g. ``SIPInternal``) on a bus, as server `server_id`."""

    def __init__(self, bus: RedisBus, service: str, *, server_id: str | None = None) -> None:
        self.bus = bus
        self.service = service
        self.server_id = server_id or new_id("SRV_")
        self._registrations: dict[str, Registration[Any]] = {}

    async def register(
        self,
        method: str,
        request_type: type[Req],
        response_type: type[Message],
        handler: Handler[Req],
        *,
        topic: Topic = (),
        queue: bool = True,
        affinity: Affinity[Req] | None = None,
    ) -> Registration[Req]:
        """Handle `method` on `topic`; returns once subscribed. One registration per (method, topic)."""
        key = channels.request(self.service, method, topic)
        if key in self._registrations:
            raise ValueError(f"{self.service}.{method} is already registered for topic {topic!r}")
        registration = Registration(self, method, topic, request_type, response_type, handler, queue, affinity)
        self._registrations[key] = registration
        try:
            await registration._start()
        except BaseException:
            await registration.close()
            raise
        return registration

    async def close(self) -> None:
        """Close every registration (each waits for the requests it already took)."""
        await asyncio.gather(*(registration.close() for registration in list(self._registrations.values())))

    def _forget(self, registration: Registration[Any]) -> None:
        key = channels.request(self.service, registration.method, registration.topic)
        if self._registrations.get(key) is registration:
            del self._registrations[key]
