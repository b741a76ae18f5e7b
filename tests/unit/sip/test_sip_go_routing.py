"""The Go service's routing keys in the sans-IO core: ``sip_hostname`` (our Contact host towards TLS peers),
``add_record_route`` (Record-Route on our answers to INVITEs) and ``outbound_route_headers`` (a preloaded route set
on our INVITEs), and the announced ``tls.port``."""

from __future__ import annotations

import pytest

from sipbridge.sip.locality import contact_hostname
from sipbridge.sip.message import Request, Response, parse_message
from sipbridge.sip.offer_answer import MediaSession
from sipbridge.sip.sdp import parse_sdp
from sipbridge.sip.settings import SipSettings
from sipbridge.sip.transaction import Address
from sipbridge.sip.useragent import UserAgent

US, PEER = "10.0.0.5", "10.0.0.9"


def media(host: str) -> MediaSession:
    return MediaSession(host, 40000, codecs=["PCMU"])


def test_the_ip_placeholder_becomes_the_signalling_ip_with_dashes() -> None:
    assert contact_hostname("${IP}.sip.example.com", "203.0.113.9") == "203-0-113-9.sip.example.com"
    assert contact_hostname("${IP}.sip.example.com", "2001:db8::9") == "2001-db8--9.sip.example.com"
    assert contact_hostname("sip.example.com", "203.0.113.9") == "sip.example.com"
    for bad in ("sip.example.com:5061", "a b", "${NODE}.example.com", "x/y", "a|b"):
        with pytest.raises(ValueError, match="invalid hostname"):
            contact_hostname(bad, "203.0.113.9")


def test_sip_hostname_is_the_contact_host_towards_tls_peers_only() -> None:
    settings = SipSettings(tls_port=15061, advertised_tls_port=5061, sip_hostname="${IP}.sip.example.com")
    ours = UserAgent(settings, local_host="203.0.113.9").locality
    tls = Address("TLS", "198.51.100.1", 5061)
    assert ours.contact(tls) == "<sip:sipbridge@203-0-113-9.sip.example.com:5061;transport=tls>"
    assert ours.contact(Address("UDP", "198.51.100.1", 5060)) == "<sip:sipbridge@203.0.113.9:5060>"
    assert ours.contact(Address("TCP", "198.51.100.1", 5060)) == "<sip:sipbridge@203.0.113.9:5060;transport=tcp>"
    assert ours.record_route(tls) == "<sip:203-0-113-9.sip.example.com:5061;transport=tls;lr>"
    plain = UserAgent(SipSettings(tls_port=5061), local_host="203.0.113.9").locality
    assert plain.contact(tls) == "<sip:sipbridge@203.0.113.9:5061;transport=tls>"


def _invite(extra: str = "") -> bytes:
    sdp = media(PEER).create_offer().to_bytes().decode()
    return (
        f"INVITE sip:+15105550100@{US}:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PEER}:5060;branch=z9hG4bKrr1;rport\r\n"
        f"From: <sip:+13105550100@{PEER}>;tag=c1\r\nTo: <sip:+15105550100@{US}>\r\nCall-ID: rr-1\r\n"
        f"CSeq: 1 INVITE\r\nContact: <sip:caller@{PEER}:5060>\r\nMax-Forwards: 70\r\n{extra}"
        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()


def _responses(agent: UserAgent) -> list[Response]:
    messages = [parse_message(data) for data, _ in agent.datagrams_to_send()]
    return [m for m in messages if isinstance(m, Response)]


@pytest.mark.parametrize("proxied", [False, True])
def test_record_route_tops_every_answer_to_an_invite(proxied: bool) -> None:
    agent = UserAgent(SipSettings(add_record_route=True), local_host=US)
    extra = "Record-Route: <sip:proxy.example.net;lr>\r\n" if proxied else ""
    agent.receive_datagram(_invite(extra), Address("UDP", PEER, 5060), 0.0)
    event = agent.next_event()
    assert event is not None
    agent.ring(event.handle, 0.0)
    agent.answer(event.handle, media(US), 0.1)
    trying, ringing, ok = _responses(agent)
    ours = f"<sip:{US}:5060;transport=udp;lr>"
    assert trying.status == 100 and "Record-Route" not in trying.headers
    expected = [ours, "<sip:proxy.example.net;lr>"] if proxied else [ours]
    assert ringing.headers.get_all("Record-Route") == expected
    assert ok.status == 200 and ok.headers.get_all("Record-Route") == expected


def test_without_the_key_answers_carry_only_the_invites_record_route() -> None:
    agent = UserAgent(SipSettings(), local_host=US)
    agent.receive_datagram(_invite(), Address("UDP", PEER, 5060), 0.0)
    event = agent.next_event()
    assert event is not None
    agent.reject(event.handle, 486, 0.0)
    assert all("Record-Route" not in r.headers for r in _responses(agent))


ROUTES = ("<sip:proxy1.example.net:5080;transport=tcp;lr>", "<sip:proxy2.example.net;lr>")


def test_outbound_routes_go_on_the_invite_which_goes_to_the_first() -> None:
    agent = UserAgent(SipSettings(outbound_routes=ROUTES), local_host=US)
    handle = agent.invite("sip:+15105550100@trunk.example.com", media(US), 0.0, from_uri=f"sip:bridge@{US}")
    [(data, dest)] = agent.datagrams_to_send()
    invite = parse_message(data)
    assert isinstance(invite, Request)
    assert dest == Address("TCP", "proxy1.example.net", 5080)
    assert str(invite.uri) == "sip:+15105550100@trunk.example.com"  # loose routing: the Request-URI stays
    assert invite.headers.get_all("Route") == list(ROUTES)
    assert "transport=tcp" in (invite.headers.get("Contact") or "")
    # A provisional response, then CANCEL: it carries the INVITE's route set (RFC 3261 §9.1).
    ringing = _answer(invite, 180, b"")
    agent.receive_datagram(ringing, Address("TCP", "proxy1.example.net", 5080), 0.1)
    agent.cancel(handle, 0.2)
    cancel = next(m for m in (parse_message(d) for d, _ in agent.datagrams_to_send()) if isinstance(m, Request))
    assert cancel.method == "CANCEL" and cancel.headers.get_all("Route") == list(ROUTES)


def test_in_dialog_requests_follow_the_answers_record_route_not_the_preloaded_routes() -> None:
    agent = UserAgent(SipSettings(outbound_routes=ROUTES[1:]), local_host=US)
    handle = agent.invite(f"sip:+15105550100@{PEER}", media(US), 0.0, from_uri=f"sip:bridge@{US}")
    [(data, dest)] = agent.datagrams_to_send()
    invite = parse_message(data)
    assert isinstance(invite, Request) and dest == Address("UDP", "proxy2.example.net", 5060)
    answer = media(PEER).receive_offer(parse_sdp(invite.body)).to_bytes()
    agent.receive_datagram(_answer(invite, 200, answer), Address("UDP", PEER, 5060), 0.1)
    [(ack_data, ack_dest)] = agent.datagrams_to_send()
    ack = parse_message(ack_data)
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack_dest == Address("UDP", PEER, 5070) and "Route" not in ack.headers  # no Record-Route in the 200
    agent.hangup(handle, 0.2)
    [(bye_data, bye_dest)] = agent.datagrams_to_send()
    assert bye_data.startswith(b"BYE") and bye_dest == ack_dest


def _answer(invite: Request, status: int, body: bytes) -> bytes:
    lines = [
        f"SIP/2.0 {status} Whatever",
        f"Via: {invite.headers.get('Via')}",
        f"From: {invite.headers.get('From')}",
        f"To: {invite.headers.get('To')};tag=callee",
        f"Call-ID: {invite.call_id}",
        f"CSeq: {invite.cseq.seq} INVITE",
        f"Contact: <sip:callee@{PEER}:5070>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    return ("\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
