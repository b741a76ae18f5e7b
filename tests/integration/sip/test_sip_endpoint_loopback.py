"""Two real Endpoints on loopback sockets (UDP and TCP): the asyncio edge end to end."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import pytest

from sipbridge.sip import CallFailed, Endpoint, InboundLeg
from sipbridge.sip.events import CallEnded, CallProgress, DtmfReceived
from sipbridge.sip.offer_answer import MediaSession
from sipbridge.sip.settings import SipSettings
from sipbridge.sip.uri import format_host


def settings(host: str = "127.0.0.1", **kw: object) -> SipSettings:
    return SipSettings(bind_host=host, port=0, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-days", "1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.mark.parametrize(
    ("transport", "host"), [("UDP", "127.0.0.1"), ("TCP", "127.0.0.1"), ("TLS", "127.0.0.1"), ("UDP", "::1")]
)
async def test_call_dtmf_and_hangup(transport: str, host: str, certificate: tuple[str, str]) -> None:
    received: list[str] = []
    got_digit = asyncio.Event()
    ended: asyncio.Future[CallEnded] = asyncio.get_running_loop().create_future()

    async def handler(call: InboundLeg) -> None:
        assert call.offer is not None and call.source.transport == transport
        call.ring()
        media = await call.answer(MediaSession(call.source.host, 30000))
        assert media.codec.name == "PCMU"
        async for event in call.events():
            if isinstance(event, DtmfReceived):
                received.append(event.digit)
                got_digit.set()
            if isinstance(event, CallEnded):
                ended.set_result(event)

    cert, key = certificate
    tls = {"tls_port": 0, "tls_cert_file": cert, "tls_key_file": key} if transport == "TLS" else {}
    callee = Endpoint(settings(host, **tls))
    caller = Endpoint(settings(host, tls_ca_file=cert))
    await callee.start()
    callee.take_calls(handler)
    await caller.start()
    try:
        port = callee.settings.tls_port if transport == "TLS" else callee.port
        target = f"sip:bob@{format_host(host)}:{port};transport={transport.lower()}"
        call = caller.place_call(
            target, MediaSession(host, 30002, codecs=["PCMU"]), from_uri=f"sip:alice@{format_host(host)}",
            transport=transport,
        )  # fmt: skip
        media = await asyncio.wait_for(call.wait_answered(), 5)
        assert media.remote_port == 30000
        call.send_dtmf("7")
        await asyncio.wait_for(got_digit.wait(), 30)
        result = await asyncio.wait_for(call.bye(), 5)
        assert result.reason == "bye"
        remote_end = await asyncio.wait_for(ended, 5)
        assert remote_end.by_remote and received == ["7"]
    finally:
        await caller.close()
        await callee.close()


async def test_rejection_and_handler_failure_are_contained() -> None:
    async def handler(call: InboundLeg) -> None:
        if call.to.uri is not None and "busy" in str(call.to.uri):
            call.reject(486)
            return
        raise RuntimeError("call flow bug")

    callee = Endpoint(settings())
    caller = Endpoint(settings())
    await callee.start()
    callee.take_calls(handler)
    await caller.start()
    try:
        for user, status in (("busy", 486), ("crash", 500)):
            call = caller.place_call(
                f"sip:{user}@127.0.0.1:{callee.port}", MediaSession("127.0.0.1", 30004), from_uri="sip:a@127.0.0.1"
            )
            with pytest.raises(CallFailed) as info:
                await asyncio.wait_for(call.wait_answered(), 5)
            assert info.value.status == status
    finally:
        await caller.close()
        await callee.close()


async def test_answer_after_cancel_raises_call_failed() -> None:
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handler(call: InboundLeg) -> None:
        call.ring()
        ended = await call.wait_ended()  # the caller gives up while "the room is being set up"
        try:
            await call.answer(MediaSession("127.0.0.1", 30000))
        except CallFailed as exc:
            outcome.set_result(f"{ended.reason}/{exc.reason}")

    callee = Endpoint(settings())
    caller = Endpoint(settings())
    await callee.start()
    callee.take_calls(handler)
    await caller.start()
    try:
        call = caller.place_call(
            f"sip:bob@127.0.0.1:{callee.port}", MediaSession("127.0.0.1", 30002), from_uri="sip:a@127.0.0.1"
        )
        async for event in call.events():
            if isinstance(event, CallProgress):
                break
        assert (await asyncio.wait_for(call.bye(), 5)).reason == "cancel"
        assert await asyncio.wait_for(outcome, 5) == "cancel/cancel"
    finally:
        await caller.close()
        await callee.close()


async def answered_then_closed_for_idleness(port: int, n: int = 0) -> None:
    """A TCP connection that sends one OPTIONS, gets its 200 and then stays quiet is closed by the endpoint."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    options = (
        f"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKidle{n}\r\n"
        f"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: idle{n}\r\nCSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    writer.write(options.encode())
    status = await asyncio.wait_for(reader.readline(), 5)
    assert status.startswith(b"SIP/2.0 200")
    await asyncio.wait_for(reader.read(), 30)  # returns b"" at EOF: the server closed the idle connection
    writer.close()


async def test_idle_stream_connection_is_closed() -> None:
    endpoint = Endpoint(settings(stream_idle_timeout=0.3))
    await endpoint.start()
    try:
        await answered_then_closed_for_idleness(endpoint.port)
    finally:
        await endpoint.close()


async def test_unreachable_tcp_peer_fails_fast() -> None:
    caller = Endpoint(settings())
    await caller.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]  # bound but not listening: connections are refused
            call = caller.place_call(
                f"sip:bob@127.0.0.1:{closed_port}", MediaSession("127.0.0.1", 30002), from_uri="sip:a@127.0.0.1",
                transport="TCP",
            )  # fmt: skip
            with pytest.raises(CallFailed) as info:
                await asyncio.wait_for(call.wait_answered(), 5)
        assert info.value.status == 503 and info.value.reason == "unreachable"
    finally:
        await caller.close()


async def test_in_dialog_actions_before_answer_raise_call_failed() -> None:
    checked: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def handler(call: InboundLeg) -> None:
        with pytest.raises(CallFailed):
            call.send_dtmf("1")
        with pytest.raises(CallFailed):
            await call.refer("sip:c@127.0.0.1")
        call.reject(603)
        checked.set_result(True)

    callee = Endpoint(settings())
    caller = Endpoint(settings())
    await callee.start()
    callee.take_calls(handler)
    await caller.start()
    try:
        call = caller.place_call(
            f"sip:bob@127.0.0.1:{callee.port}", MediaSession("127.0.0.1", 30002), from_uri="sip:a@127.0.0.1"
        )
        with pytest.raises(CallFailed) as info:
            await asyncio.wait_for(call.wait_answered(), 5)
        assert info.value.status == 603 and await asyncio.wait_for(checked, 5)
    finally:
        await caller.close()
        await callee.close()


async def test_dual_stack_listener_serves_ipv4_and_ipv6_callers() -> None:
    answered: list[str] = []

    async def handler(call: InboundLeg) -> None:
        answered.append(f"{call.source.transport} {call.source.host}")
        await call.answer(MediaSession("127.0.0.1", 30000))
        await call.wait_ended()

    dual = SipSettings(bind_host="::", port=0, advertised_host="127.0.0.1", advertised_host_v6="::1")
    callee = Endpoint(dual)
    await callee.start()
    callee.take_calls(handler)
    try:
        for host, transport in (("127.0.0.1", "UDP"), ("127.0.0.1", "TCP"), ("::1", "UDP"), ("::1", "TCP")):
            caller = Endpoint(settings(host))
            await caller.start()
            try:
                call = caller.place_call(
                    f"sip:bob@{format_host(host)}:{callee.port};transport={transport.lower()}",
                    MediaSession(host, 30002), from_uri="sip:a@example.com", transport=transport,
                )  # fmt: skip
                await asyncio.wait_for(call.wait_answered(), 5)
                assert (await asyncio.wait_for(call.bye(), 5)).reason == "bye"
            finally:
                await caller.close()
    finally:
        await callee.close()
    assert answered == ["UDP 127.0.0.1", "TCP 127.0.0.1", "UDP ::1", "TCP ::1"]


async def test_connection_carrying_a_call_is_not_closed_for_idleness() -> None:
    """While the call's connection is quiet, two other idle connections are closed one after the other: the
    reaper has passed over the call's connection (idle longer than either) at least once, and left it open."""
    ended: asyncio.Future[CallEnded] = asyncio.get_running_loop().create_future()
    hang_up = asyncio.Event()

    async def handler(call: InboundLeg) -> None:
        await call.answer(MediaSession("127.0.0.1", 30000))
        await hang_up.wait()
        ended.set_result(await call.bye())

    callee = Endpoint(settings(stream_idle_timeout=0.3))
    caller = Endpoint(settings())
    await callee.start()
    callee.take_calls(handler)
    await caller.start()
    try:
        call = caller.place_call(
            f"sip:bob@127.0.0.1:{callee.port};transport=tcp", MediaSession("127.0.0.1", 30002),
            from_uri="sip:a@127.0.0.1", transport="TCP",
        )  # fmt: skip
        await asyncio.wait_for(call.wait_answered(), 5)
        assert callee.active_calls == 1 and callee.transports is not None
        [carrying] = callee.transports.connections.values()
        for n in range(2):
            await answered_then_closed_for_idleness(callee.port, n)
        assert carrying.transport is not None and not carrying.transport.is_closing()
        hang_up.set()
        result = await asyncio.wait_for(ended, 10)
        assert result.status == 200 and (await call.wait_ended()).by_remote
    finally:
        await caller.close()
        await callee.close()


async def test_late_event_loop_marks_the_agent_overloaded() -> None:
    endpoint = Endpoint(settings(overload_lag=0.05))
    await endpoint.start()
    try:
        assert endpoint.ua is not None
        for _ in range(100):
            if endpoint.ua.overloaded:
                break
            time.sleep(0.3)  # noqa: ASYNC251 - blocking the loop on purpose, as a saturated node would
            await asyncio.sleep(0.06)
        assert endpoint.ua.overloaded
    finally:
        await endpoint.close()


OPTIONS = (
    "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK{n}\r\n"
    "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: slow{n}\r\nCSeq: 1 OPTIONS\r\n"
    "Content-Length: 0\r\n\r\n"
)


async def test_slow_and_silent_tcp_peers_are_cut_off_and_a_drip_still_frames() -> None:
    """A message must arrive whole within the deadline of its first byte, and a new connection must bring one
    within it; a message dripped a byte at a time inside the deadline is still answered."""
    endpoint = Endpoint(settings(stream_message_deadline=1.0))
    await endpoint.start()
    try:
        silent_reader, silent = await asyncio.open_connection("127.0.0.1", endpoint.port)
        slow_reader, slow = await asyncio.open_connection("127.0.0.1", endpoint.port)
        slow.write(OPTIONS.format(n=1).encode()[:40])  # the headers never finish
        drip_reader, drip = await asyncio.open_connection("127.0.0.1", endpoint.port)
        for byte in OPTIONS.format(n=2).encode():
            drip.write(bytes([byte]))
            await drip.drain()
        assert (await asyncio.wait_for(drip_reader.readline(), 5)).startswith(b"SIP/2.0 200")
        assert await asyncio.wait_for(silent_reader.read(), 10) == b""  # EOF: closed by the bridge
        assert await asyncio.wait_for(slow_reader.read(), 10) == b""
        for writer in (silent, slow, drip):
            writer.close()
    finally:
        await endpoint.close()


async def test_one_host_may_hold_only_so_many_connections() -> None:
    endpoint = Endpoint(settings(max_connections_per_source=3))
    await endpoint.start()
    try:
        opened = [await asyncio.open_connection("127.0.0.1", endpoint.port) for _ in range(4)]
        assert await asyncio.wait_for(opened[3][0].read(), 10) == b""  # the fourth is closed at once
        for n, (reader, writer) in enumerate(opened[:3]):  # the first three are served
            writer.write(OPTIONS.format(n=10 + n).encode())
            assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"SIP/2.0 200")
        opened[0][1].close()
        for attempt in range(50):  # a place comes free once the bridge has seen the close
            reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
            writer.write(OPTIONS.format(n=20 + attempt).encode())
            line = await asyncio.wait_for(reader.readline(), 5)  # a status line, or b"" when refused
            writer.close()
            if line:
                assert line.startswith(b"SIP/2.0 200")
                break
        else:
            raise AssertionError("no connection was accepted after one closed")
        for _, w in opened[1:]:
            w.close()
    finally:
        await endpoint.close()


async def test_local_net_chooses_the_address_signalled_from_on_a_wildcard_bind() -> None:
    endpoint = Endpoint(settings("0.0.0.0", local_net="127.0.0.0/8"))
    await endpoint.start()
    try:
        assert endpoint.local_host == "127.0.0.1"
    finally:
        await endpoint.close()
