"""What the core does with a WebSocket peer (RFC 7118): each frame is one message (no Content-Length needed),
answers go back over the connection, nothing is retransmitted, and our Via/Contact name the ws transport."""

from __future__ import annotations

from sipbridge.sip.events import IncomingCall
from sipbridge.sip.offer_answer import MediaSession
from sipbridge.sip.settings import SipSettings
from sipbridge.sip.transaction import Address
from sipbridge.sip.useragent import UserAgent

BROWSER = Address("WS", "198.51.100.20", 50123)


def test_a_frame_without_content_length_is_a_call_answered_over_the_connection() -> None:
    ua = UserAgent(SipSettings(port=5060, ws_port=5066), local_host="203.0.113.5")
    ua.connection_made(BROWSER)
    invite = (
        "INVITE sip:+15105550100@203.0.113.5 SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKws1\r\n"
        "From: <sip:alice@df7jal23ls0d.invalid>;tag=a1\r\nTo: <sip:+15105550100@203.0.113.5>\r\n"
        "Call-ID: ws-1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@df7jal23ls0d.invalid;transport=ws>\r\n"
        "Max-Forwards: 70\r\n\r\n"
    )
    ua.receive_datagram(invite.encode(), BROWSER, 0.0)
    (call,) = [e for e in iter(ua.next_event, None) if isinstance(e, IncomingCall)]
    ua.ring(call.handle, 0.0)
    ua.answer(call.handle, MediaSession("203.0.113.5", 40000, codecs=["PCMU"]), 0.0)
    sent = ua.datagrams_to_send()
    assert {dest for _, dest in sent} == {BROWSER}
    ok = next(data for data, _ in sent if data.startswith(b"SIP/2.0 200"))
    assert b"Contact: <sip:sipbridge@203.0.113.5:5066;transport=ws>" in ok
    ua.handle_timer(5.0)  # a stream: the 2xx is not retransmitted while the ACK is awaited
    assert not ua.datagrams_to_send()
