"""psrpc between our own servers and clients on a real Redis: queueing, pausing, claims, topics, expiry, errors.

Each server and client has its own bus (own Redis connections), as separate nodes would. The tests assert what the
protocol guarantees (which error, who ran what, what ran at the same time), never how long it took: the selection
window, the deadline and the concurrency figures are measured by bench/bench_psrpc.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis
from harness.processes import RedisServer

from sipbridge.psrpc import ErrorCode, Incoming, PsrpcError, RedisBus, Registration, RPCClient, RPCServer, channels
from sipbridge.psrpc.wire import ClaimRequest, ClaimResponse, Request, Response

pytestmark = pytest.mark.integration

# Any message type will do as request and response here; the SIP types are exercised against livekit-server.
Ping = ClaimResponse
SERVICE = "PsrpcTest"
NewBus = Callable[[], Awaitable[RedisBus]]
PATIENCE = 30.0
"""Selection window and timeout of a call whose server must answer: psrpc's 1 s window (bench_psrpc.py times it)
is the protocol's, but a claim that a loaded machine delivers late must not fail a test about who runs what."""


async def call(client: RPCClient, method: str, request_id: str, topic: str = "") -> Ping:
    """A call that a server claims and answers (or fails with its own error), however loaded the machine."""
    request = Ping(request_id=request_id)
    return await client.request(method, request, Ping, topic=topic, timeout=PATIENCE, selection_timeout=PATIENCE)


def echo(server: RPCServer, seen: Counter[str]) -> Callable[[Ping, Incoming], Awaitable[Ping]]:
    """A handler counting the requests it runs and answering with its server's ID."""

    async def handle(request: Ping, incoming: Incoming) -> Ping:
        seen[request.request_id] += 1
        return Ping(request_id=request.request_id, server_id=server.server_id)

    return handle


async def start_servers(new_bus: NewBus, count: int, seen: Counter[str]) -> list[tuple[RPCServer, Registration[Ping]]]:
    """`count` servers of method Echo, each on its own bus."""
    started = []
    for _ in range(count):
        server = RPCServer(await new_bus(), SERVICE)
        started.append((server, await server.register("Echo", Ping, Ping, echo(server, seen))))
    return started


async def test_a_queued_request_is_handled_by_exactly_one_server(new_bus: NewBus) -> None:
    seen: Counter[str] = Counter()
    servers = [server for server, _ in await start_servers(new_bus, 3, seen)]
    client = RPCClient(await new_bus(), SERVICE)

    replies = await asyncio.gather(*(call(client, "Echo", f"r{i}") for i in range(30)))

    assert [reply.request_id for reply in replies] == [f"r{i}" for i in range(30)]
    assert seen == Counter({f"r{i}": 1 for i in range(30)})  # every request ran once, on one server
    assert {reply.server_id for reply in replies} <= {server.server_id for server in servers}


async def test_a_paused_server_gets_no_requests_until_it_resumes(new_bus: NewBus) -> None:
    seen: Counter[str] = Counter()
    (server_a, registration_a), (server_b, registration_b) = await start_servers(new_bus, 2, seen)
    client = RPCClient(await new_bus(), SERVICE)

    await registration_a.pause()
    assert registration_a.paused
    replies = [await call(client, "Echo", f"r{i}") for i in range(10)]
    assert {reply.server_id for reply in replies} == {server_b.server_id}

    await registration_a.resume()
    await registration_b.pause()
    replies = [await call(client, "Echo", f"s{i}") for i in range(10)]
    assert {reply.server_id for reply in replies} == {server_a.server_id}


async def test_with_every_server_paused_the_call_fails_unavailable_and_no_server_runs_it(new_bus: NewBus) -> None:
    server = RPCServer(await new_bus(), SERVICE)
    seen: Counter[str] = Counter()
    registration = await server.register("Echo", Ping, Ping, echo(server, seen))
    await registration.pause()
    client = RPCClient(await new_bus(), SERVICE)

    with pytest.raises(PsrpcError) as failure:
        await client.request("Echo", Ping(request_id="r"), Ping)
    assert (failure.value.code, failure.value.message) == (ErrorCode.UNAVAILABLE, "no response from servers")
    assert not seen

    await registration.resume()  # the request was not kept for later: the next one is the first this server runs
    assert (await call(client, "Echo", "s")).server_id == server.server_id
    assert seen == Counter({"s": 1})


async def test_a_server_that_takes_a_request_but_declines_the_claim_fails_it(new_bus: NewBus) -> None:
    server = RPCServer(await new_bus(), SERVICE)
    seen: Counter[str] = Counter()
    await server.register("Echo", Ping, Ping, echo(server, seen), affinity=lambda ping: -1.0 if ping.server_id else 1.0)
    client = RPCClient(await new_bus(), SERVICE)

    assert (await call(client, "Echo", "ok")).request_id == "ok"
    with pytest.raises(PsrpcError) as failure:
        await client.request("Echo", Ping(request_id="declined", server_id="x"), Ping)
    assert (failure.value.code, failure.value.message) == (ErrorCode.UNAVAILABLE, "no response from servers")
    assert seen == Counter({"ok": 1})


async def test_claims_carry_the_affinity_and_the_best_one_wins(new_bus: NewBus) -> None:
    seen: Counter[str] = Counter()
    servers = []
    for affinity in (0.2, 0.9):
        server = RPCServer(await new_bus(), SERVICE)
        await server.register("Echo", Ping, Ping, echo(server, seen), queue=False, affinity=lambda _, a=affinity: a)
        servers.append(server)
    client = RPCClient(await new_bus(), SERVICE)

    # Without accept_first the caller waits out the whole window for the best claim: long enough for both to come.
    reply = await client.request(
        "Echo", Ping(request_id="r"), Ping, accept_first=False, selection_timeout=5, timeout=PATIENCE
    )
    assert reply.server_id == servers[1].server_id
    assert seen == Counter({"r": 1})


async def test_a_topic_is_served_only_while_registered(new_bus: NewBus) -> None:
    server = RPCServer(await new_bus(), SERVICE)
    seen: Counter[str] = Counter()
    client = RPCClient(await new_bus(), SERVICE)
    topic = "SCL_topic-test"  # the dash is escaped in the channel name on both sides

    registration = await server.register("Transfer", Ping, Ping, echo(server, seen), topic=topic)
    assert (await call(client, "Transfer", "on", topic)).request_id == "on"
    with pytest.raises(PsrpcError, match="no response from servers"):
        await client.request("Transfer", Ping(request_id="other"), Ping, topic="SCL_other")

    await registration.close()
    with pytest.raises(PsrpcError, match="no response from servers"):
        await client.request("Transfer", Ping(request_id="off"), Ping, topic=topic)

    await server.register("Transfer", Ping, Ping, echo(server, seen), topic=topic)
    assert (await call(client, "Transfer", "again", topic)).request_id == "again"
    assert seen == Counter({"on": 1, "again": 1})


async def test_registering_a_topic_twice_on_one_server_is_refused(new_bus: NewBus) -> None:
    server = RPCServer(await new_bus(), SERVICE)
    seen: Counter[str] = Counter()
    await server.register("Transfer", Ping, Ping, echo(server, seen), topic="SCL_1")
    with pytest.raises(ValueError, match="already registered"):
        await server.register("Transfer", Ping, Ping, echo(server, seen), topic=["SCL_1"])


async def test_an_expired_request_is_dropped_unclaimed(new_bus: NewBus, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sipbridge.psrpc.server")
    seen: Counter[str] = Counter()
    await start_servers(new_bus, 1, seen)
    listener = await new_bus()
    claims: list[ClaimRequest] = []
    claimed = asyncio.Event()

    def on_claim(claim: ClaimRequest) -> None:
        claims.append(claim)
        claimed.set()

    await listener.subscribe(channels.claim_request(SERVICE, "CLI_expiry"), ClaimRequest, on_claim)

    now = time.time_ns()
    for request_id, expiry in (("past", now - 1), ("zero", 0), ("live", now + 30_000_000_000)):
        request = Request(request_id=request_id, client_id="CLI_expiry", sent_at=now, expiry=expiry)
        await listener.publish(channels.request(SERVICE, "Echo", ""), request)

    def dropped(request_id: str) -> bool:
        return any(f"Echo {request_id} arrived expired" in record.getMessage() for record in caplog.records)

    async with asyncio.timeout(30):  # the server's own record of each decision, not a pause
        await claimed.wait()
        while not (dropped("past") and dropped("zero")):  # noqa: ASYNC110 (the server's log records)
            await asyncio.sleep(0.05)
    assert [claim.request_id for claim in claims] == ["live"]
    assert not seen  # "live" was claimed, but nobody answered the claim, so it never ran


async def test_a_handler_past_the_deadline_is_cancelled_and_the_caller_times_out(new_bus: NewBus) -> None:
    server = RPCServer(await new_bus(), SERVICE)
    deadlines: list[float] = []
    cancelled = asyncio.Event()

    async def never_answers(request: Ping, incoming: Incoming) -> Ping:
        deadlines.append(incoming.deadline)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return request

    await server.register("Slow", Ping, Ping, never_answers)
    client = RPCClient(await new_bus(), SERVICE)
    before = time.time()
    with pytest.raises(PsrpcError) as failure:  # 5 s: time for a server to claim it, on a loaded machine too
        await client.request("Slow", Ping(request_id="r"), Ping, timeout=5.0)
    assert (failure.value.code, failure.value.message) == (ErrorCode.DEADLINE_EXCEEDED, "request timed out")
    await asyncio.wait_for(cancelled.wait(), 30)  # the server gave up on it too, rather than running it forever
    [deadline] = deadlines
    assert before + 4.99 < deadline <= time.time() + 5.0  # the caller's 5 s, carried in the request


async def test_handlers_run_concurrently(new_bus: NewBus) -> None:
    server = RPCServer(await new_bus(), SERVICE)
    together = asyncio.Barrier(20)

    async def meet(request: Ping, incoming: Incoming) -> Ping:
        await together.wait()  # returns only once all twenty handlers are running at the same time
        return request

    await server.register("Meet", Ping, Ping, meet)
    client = RPCClient(await new_bus(), SERVICE)
    requests = [call(client, "Meet", f"r{i}") for i in range(20)]
    replies = await asyncio.gather(*requests)
    assert sorted(reply.request_id for reply in replies) == sorted(f"r{i}" for i in range(20))


async def test_handler_errors_reach_the_caller(new_bus: NewBus) -> None:
    server = RPCServer(await new_bus(), SERVICE)

    async def fail(request: Ping, incoming: Incoming) -> Ping:
        if request.request_id == "busy":
            raise PsrpcError.from_sip_status(486, "Busy Here")
        if request.request_id == "wrong-type":
            return Response()  # type: ignore[return-value]
        raise ValueError("boom")

    await server.register("Fail", Ping, Ping, fail)
    client = RPCClient(await new_bus(), SERVICE)

    with pytest.raises(PsrpcError) as busy:
        await call(client, "Fail", "busy")
    assert busy.value.code == ErrorCode.RESOURCE_EXHAUSTED
    assert busy.value.message == "sip status: 486: Busy Here"
    assert busy.value.sip_status is not None and busy.value.sip_status.code == 486

    with pytest.raises(PsrpcError) as boom:
        await call(client, "Fail", "boom")
    assert (boom.value.code, boom.value.message) == (ErrorCode.UNKNOWN, "boom")

    with pytest.raises(PsrpcError) as wrong:
        await call(client, "Fail", "wrong-type")
    assert wrong.value.code == ErrorCode.INTERNAL


async def test_an_undecodable_request_is_answered_malformed_without_a_claim(new_bus: NewBus) -> None:
    seen: Counter[str] = Counter()
    await start_servers(new_bus, 1, seen)
    listener = await new_bus()
    claims: list[ClaimRequest] = []
    responses: asyncio.Queue[Response] = asyncio.Queue()
    await listener.subscribe(channels.claim_request(SERVICE, "CLI_bad"), ClaimRequest, claims.append)
    await listener.subscribe(channels.response(SERVICE, "CLI_bad"), Response, responses.put_nowait)

    now = time.time_ns()
    truncated = b"\x0a\x05ab"
    request = Request(request_id="REQ_bad", client_id="CLI_bad", sent_at=now, expiry=now + 10**9, raw_request=truncated)
    await listener.publish(channels.request(SERVICE, "Echo", ""), request)

    response = await asyncio.wait_for(responses.get(), 2)
    assert (response.request_id, response.code) == ("REQ_bad", "malformed_request")
    assert not claims and not seen


async def test_calls_work_again_after_redis_drops_the_subscriber_connections(
    new_bus: NewBus, redis_server: RedisServer
) -> None:
    seen: Counter[str] = Counter()
    await start_servers(new_bus, 1, seen)
    client = RPCClient(await new_bus(), SERVICE)
    assert (await call(client, "Echo", "before")).request_id == "before"

    admin = aioredis.Redis(host=redis_server.host, port=redis_server.port)
    try:
        listing = (await admin.execute_command("CLIENT", "LIST", "TYPE", "pubsub")).decode()
        ours = [line.split()[0].removeprefix("id=") for line in listing.splitlines() if " name=psrpc-test-" in line]
        assert len(ours) >= 2  # at least the server's and the client's subscriber connections
        for client_id in ours:
            await admin.execute_command("CLIENT", "KILL", "ID", client_id)
    finally:
        await admin.aclose()

    # Messages published while a subscriber is away are lost (Redis pub/sub keeps nothing), so callers may see
    # a failure or two; once the buses have reconnected and resubscribed, calls go through again.
    async with asyncio.timeout(PATIENCE):
        while True:
            try:
                reply = await client.request("Echo", Ping(request_id="after"), Ping)
                break
            except PsrpcError:
                await asyncio.sleep(0.1)
    assert reply.request_id == "after"


async def test_a_handler_may_close_its_own_registration(new_bus: NewBus) -> None:
    # A call that ends in its transfer deregisters the transfer topic from inside the transfer handler.
    server = RPCServer(await new_bus(), SERVICE)
    registrations: list[Registration[Ping]] = []

    async def last_call(request: Ping, incoming: Incoming) -> Ping:
        await registrations[0].close()
        return request

    registrations.append(await server.register("Transfer", Ping, Ping, last_call, topic="SCL_once"))
    client = RPCClient(await new_bus(), SERVICE)
    assert (await call(client, "Transfer", "1", "SCL_once")).request_id == "1"
    with pytest.raises(PsrpcError, match="no response from servers"):
        await client.request("Transfer", Ping(request_id="2"), Ping, topic="SCL_once")


async def test_bus_fan_out_turns_and_unsubscribe(new_bus: NewBus, redis_server: RedisServer) -> None:
    bus, publisher = await new_bus(), await new_bus()
    plain_a: list[str] = []
    plain_b: list[str] = []
    queued: list[tuple[str, str]] = []
    subscriptions = await asyncio.gather(
        bus.subscribe("psrpc-test|plain", Ping, lambda m: plain_a.append(m.request_id)),
        bus.subscribe("psrpc-test|plain", Ping, lambda m: plain_b.append(m.request_id)),
        bus.subscribe("psrpc-test|queue", Ping, lambda m: queued.append(("a", m.request_id)), queue=True),
        bus.subscribe("psrpc-test|queue", Ping, lambda m: queued.append(("b", m.request_id)), queue=True),
    )
    for i in range(4):
        await publisher.publish("psrpc-test|plain", Ping(request_id=f"p{i}"))
        await publisher.publish("psrpc-test|queue", Ping(request_id=f"q{i}"))
    await publisher.publish("psrpc-test|plain", Response(request_id="wrong type"))  # dropped, not misread
    await publisher.publish("psrpc-test|plain", Ping(request_id="last"))  # after it: proof it was read by then

    async with asyncio.timeout(30):
        while len(plain_a) < 5 or len(plain_b) < 5 or len(queued) < 4:  # noqa: ASYNC110 (bus callbacks)
            await asyncio.sleep(0.02)
    assert plain_a == plain_b == ["p0", "p1", "p2", "p3", "last"]  # every plain subscriber gets every message
    assert sorted(queued, key=lambda item: item[1]) == [("a", "q0"), ("b", "q1"), ("a", "q2"), ("b", "q3")]

    admin = aioredis.Redis(host=redis_server.host, port=redis_server.port)
    try:
        for subscription in subscriptions:
            await subscription.close()
        async with asyncio.timeout(30):  # Redis drops the subscriptions as it processes the UNSUBSCRIBEs
            while any(n for _, n in await admin.pubsub_numsub("psrpc-test|plain", "psrpc-test|queue")):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        await admin.aclose()


async def test_the_handler_learns_who_calls_with_what_metadata_and_until_when(new_bus: NewBus) -> None:
    server = RPCServer(await new_bus(), SERVICE)
    seen: list[Incoming] = []

    async def note(request: Ping, incoming: Incoming) -> Ping:
        seen.append(incoming)
        return request

    registration = await server.register("Note", Ping, Ping, note)
    assert not registration.paused
    client = RPCClient(await new_bus(), SERVICE)
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    before = time.time()
    await client.request(
        "Note", Ping(), Ping, timeout=PATIENCE, selection_timeout=PATIENCE, metadata={"traceparent": traceparent}
    )

    [incoming] = seen
    assert incoming.client_id == client.client_id and incoming.request_id.startswith("REQ_")
    assert incoming.metadata == {"traceparent": traceparent}
    assert before + PATIENCE - 0.01 < incoming.deadline <= time.time() + PATIENCE  # the caller's timeout
