"""SIP over WebSocket (RFC 7118) end to end: a browser-like client (the `websockets` library, subprotocol "sip")
calls the bridge's ws:// listener, is admitted by a trunk like any source, reaches a room where the agent hears it,
and hangs up. Media is plain RTP, as the SDP negotiates."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import websockets
from harness.audio import dominant_frequency
from harness.bridge import BridgeProcess, api_client
from harness.inbound_setup import CALLER, TRUNK_NUMBER, configure, direct
from harness.participant import RATE, TestParticipant
from harness.ports import LOOPBACK, free_tcp_port
from harness.processes import LiveKitServer
from harness.rtp_phone import RtpPhone
from websockets.asyncio.client import ClientConnection

pytestmark = pytest.mark.integration

ROOM = "ws-room"
TONE, AGENT_TONE = 600.0, 1000.0
BROWSER = "df7jal23ls0d.invalid"  # a browser has no address to give: RFC 7118 §5.2's example host


def request(method: str, uri: str, call_id: str, cseq: int, from_tag: str, to_tag: str = "", body: str = "") -> str:
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/WS {BROWSER};branch=z9hG4bK{secrets.token_hex(6)};rport",
        "Max-Forwards: 70",
        f"From: <sip:{CALLER}@{BROWSER}>;tag={from_tag}",
        f"To: <sip:{TRUNK_NUMBER}@{LOOPBACK}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:caller@{BROWSER};transport=ws>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


async def final_response(ws: ClientConnection, method: str) -> str:
    """The next final response to `method`, skipping provisional ones (each frame is one SIP message)."""
    while True:
        frame = await ws.recv()
        text = frame if isinstance(frame, str) else frame.decode()
        status = int(text.split(" ", 2)[1]) if text.startswith("SIP/2.0 ") else 0
        if status >= 200 and f" {method}\r\n" in text:
            return text


def header(message: str, name: str) -> str:
    for line in message.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} in {message}")


async def test_websocket_client_calls_into_a_room(
    tmp_path: Path, livekit_server: LiveKitServer, rtp_phone: RtpPhone
) -> None:
    ws_port = free_tcp_port()
    with BridgeProcess(tmp_path / "bridge", livekit=livekit_server, extra={"websocket": {"port": ws_port}}) as bridge:
        async with api_client(bridge) as client:
            await configure(client, direct(ROOM), allowed_addresses=[LOOPBACK])
        rtp_phone.play_tone(TONE)
        sdp = (
            f"v=0\r\no=- 1 1 IN IP4 {LOOPBACK}\r\ns=-\r\nc=IN IP4 {LOOPBACK}\r\nt=0 0\r\n"
            f"m=audio {rtp_phone.port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
        )
        async with (
            TestParticipant(
                livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, ROOM, "agent"
            ) as agent,
            websockets.connect(f"ws://{LOOPBACK}:{ws_port}/", subprotocols=[websockets.Subprotocol("sip")]) as ws,
        ):
            assert ws.subprotocol == "sip"
            await agent.publish_tone(AGENT_TONE)
            call_id, tag = secrets.token_hex(8), secrets.token_hex(4)
            target = f"sip:{TRUNK_NUMBER}@{LOOPBACK}"
            await ws.send(request("INVITE", target, call_id, 1, tag, body=sdp))
            ok = await final_response(ws, "INVITE")
            assert ok.startswith("SIP/2.0 200"), ok
            contact = header(ok, "Contact").strip("<>")
            assert "transport=ws" in contact and f":{ws_port}" in contact
            assert header(ok, "Via").startswith(f"SIP/2.0/WS {BROWSER}")
            to_tag = header(ok, "To").split("tag=")[1]
            await ws.send(request("ACK", contact, call_id, 1, tag, to_tag))

            heard = await agent.wait_heard(f"sip_{CALLER}", 2.0)
            assert abs(dominant_frequency(heard[-RATE:], RATE) - TONE) < 5
            at_phone = await rtp_phone.wait_heard(2.0)
            assert abs(dominant_frequency(at_phone[-8000:], 8000) - AGENT_TONE) < 5

            await ws.send(request("BYE", contact, call_id, 2, tag, to_tag))
            assert (await final_response(ws, "BYE")).startswith("SIP/2.0 200")


async def test_a_client_without_the_sip_subprotocol_is_refused(tmp_path: Path) -> None:
    ws_port = free_tcp_port()
    with BridgeProcess(tmp_path / "bridge", extra={"websocket": {"port": ws_port}}):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(f"ws://{LOOPBACK}:{ws_port}/"):
                pass
        assert refused.value.response.status_code == 400
