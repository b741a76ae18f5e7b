"""Two sans-IO user agents wired back to back on a fake network and a fake clock: whole call flows, no sockets."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sipbridge.sip.auth import DigestCredentials, DigestVerdict
from sipbridge.sip.call_state import CallState
from sipbridge.sip.errors import LocalProtocolError
from sipbridge.sip.events import (
    CallAcked,
    CallAnswered,
    CallEnded,
    CallHandle,
    CallProgress,
    DtmfReceived,
    Event,
    IncomingCall,
    MediaUpdated,
    TransferProgress,
)
from sipbridge.sip.message import Request, Response, parse_message
from sipbridge.sip.offer_answer import MediaSession
from sipbridge.sip.sdp import parse_sdp
from sipbridge.sip.settings import SipSettings
from sipbridge.sip.transaction import Address
from sipbridge.sip.useragent import UserAgent

A_HOST, B_HOST = "10.0.0.1", "10.0.0.2"


class Net:
    """Delivers everything each agent sends to the agent owning the destination host; can drop and log."""

    def __init__(self, transport: str = "UDP") -> None:
        self.transport = transport
        self.a = UserAgent(SipSettings(port=5060), local_host=A_HOST)
        self.b = UserAgent(SipSettings(port=5070), local_host=B_HOST)
        self.now = 0.0
        self.drop: Callable[[bytes], bool] = lambda data: False
        self.log: list[bytes] = []
        self.events: dict[str, list[Event]] = {"a": [], "b": []}

    def flush(self) -> None:
        for _ in range(50):
            moved = False
            for sender, sender_host, port in ((self.a, A_HOST, 5060), (self.b, B_HOST, 5070)):
                for data, dest in sender.datagrams_to_send():
                    moved = True
                    self.log.append(data)
                    if self.drop(data):
                        continue
                    receiver = self.a if dest.host == A_HOST else self.b
                    receiver.receive_datagram(data, Address(dest.transport, sender_host, port), self.now)
            for name, agent in (("a", self.a), ("b", self.b)):
                while (event := agent.next_event()) is not None:
                    self.events[name].append(event)
                    moved = True
            if not moved:
                return

    def advance(self, until: float) -> None:
        while True:
            timers = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None and t <= until]
            if not timers:
                break
            self.now = max(self.now, min(timers))
            self.a.handle_timer(self.now)
            self.b.handle_timer(self.now)
            self.flush()
        self.now = until
        self.flush()

    def of(self, side: str, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events[side] if isinstance(e, kind)]

    def sent(self, first_line: str) -> list[bytes]:
        return [m for m in self.log if m.startswith(first_line.encode())]


def media(host: str) -> MediaSession:
    return MediaSession(host, 40000, codecs=["PCMU", "PCMA"])


def place_call(net: Net, **kw: object) -> CallHandle:
    handle = net.a.invite(
        f"sip:bob@{B_HOST}:5070",
        media(A_HOST),
        net.now,
        from_uri=f"sip:alice@{A_HOST}",
        transport=net.transport,
        **kw,  # type: ignore[arg-type]
    )
    net.flush()
    return handle


def incoming(net: Net) -> CallHandle:
    calls = net.of("b", IncomingCall)
    assert calls, "no IncomingCall"
    return calls[-1].handle  # type: ignore[no-any-return]


def established(net: Net, **kw: object) -> tuple[CallHandle, CallHandle]:
    out = place_call(net, **kw)
    inbound = incoming(net)
    net.b.ring(inbound, net.now)
    net.b.answer(inbound, media(B_HOST), net.now, extra_headers={"X-Trunk": "t1"})
    net.flush()
    return out, inbound


def request_from_caller(net: Net, inbound: CallHandle, method: str, seq: int, extra: str, body: bytes = b"") -> None:
    """An in-dialog request from a to b written by hand, for methods the agent has no action for."""
    info = net.b.call_info(inbound)
    head = (
        f"{method} sip:sipbridge@{B_HOST}:5070 SIP/2.0\r\nVia: SIP/2.0/UDP {A_HOST}:5060;branch=z9hG4bKhand{seq}\r\n"
        f"From: {info.invite.headers.get('From')}\r\nTo: {info.invite.headers.get('To')};tag={info.local_tag}\r\n"
        f"Call-ID: {info.call_id}\r\nCSeq: {seq} {method}\r\nContact: <sip:alice@{A_HOST}:5060>\r\n"
        f"Max-Forwards: 70\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    net.b.receive_datagram(head.encode() + body, Address("UDP", A_HOST, 5060), net.now)
    net.flush()


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_call_answer_and_bye_from_caller(transport: str) -> None:
    net = Net(transport)
    out, inbound = established(net)
    assert [e.status for e in net.of("a", CallProgress)] == [180]
    assert b"X-Trunk: t1" in net.sent("SIP/2.0 200")[0]
    answered = net.of("a", CallAnswered)[0]
    assert answered.media.codec.name == "PCMU" and answered.media.remote_address == B_HOST
    assert net.of("b", CallAcked)[0].media.remote_address == A_HOST
    assert net.a.state(out) is net.b.state(inbound) is CallState.CONFIRMED
    net.a.hangup(out, net.now)
    net.flush()
    assert net.of("b", CallEnded)[0].by_remote and net.of("a", CallEnded)[0].reason == "bye"
    assert net.a.active_calls == net.b.active_calls == 0


def test_bye_from_callee_and_invite_retransmission_over_loss() -> None:
    net = Net()
    dropped: list[bytes] = []

    def drop_first_invite(data: bytes) -> bool:
        if data.startswith(b"INVITE") and not dropped:
            dropped.append(data)
            return True
        return False

    net.drop = drop_first_invite
    out = place_call(net)
    assert not net.of("b", IncomingCall)
    net.advance(0.5)  # timer A retransmits
    inbound = incoming(net)
    net.b.answer(inbound, media(B_HOST), net.now)
    net.flush()
    net.b.hangup(inbound, net.now)
    net.flush()
    assert net.of("a", CallEnded)[0].by_remote and net.a.state(out) is CallState.ENDED


def test_lost_2xx_is_retransmitted_until_ack() -> None:
    net = Net()
    place_call(net)
    inbound = incoming(net)
    lost: list[bytes] = []
    net.drop = lambda data: data.startswith(b"SIP/2.0 200") and not lost and not lost.append(data)  # type: ignore[func-returns-value]
    net.b.answer(inbound, media(B_HOST), net.now)
    net.flush()
    assert not net.of("a", CallAnswered)
    net.advance(0.5)
    assert net.of("a", CallAnswered) and net.of("b", CallAcked)


def test_no_ack_ends_call_with_bye() -> None:
    net = Net()
    place_call(net)
    inbound = incoming(net)
    net.drop = lambda data: data.startswith(b"ACK")
    net.b.answer(inbound, media(B_HOST), net.now)
    net.advance(40.0)
    assert net.of("b", CallEnded)[0].reason == "ack-timeout"
    assert net.sent("BYE")


def test_cancel_before_answer() -> None:
    net = Net()
    out = place_call(net)
    net.b.ring(incoming(net), net.now)
    net.flush()
    net.a.hangup(out, net.now)  # still ringing: CANCEL
    net.flush()
    assert net.sent("CANCEL") and net.sent("SIP/2.0 487")
    assert net.of("a", CallEnded)[0].reason == "cancel"
    assert net.of("b", CallEnded)[0].reason == "cancel"


def test_cancel_waits_for_provisional() -> None:
    net = Net()
    net.drop = lambda data: data.startswith(b"SIP/2.0 100")
    out = place_call(net)
    net.a.cancel(out, net.now)
    net.flush()
    assert not net.sent("CANCEL")
    net.b.ring(incoming(net), net.now)
    net.flush()
    assert net.sent("CANCEL") and net.of("a", CallEnded)[0].reason == "cancel"


def test_reject_and_digest_auth_both_ways() -> None:
    net = Net()
    out = place_call(net, credentials=DigestCredentials("alice", "pw"))
    first = incoming(net)
    first_call_id = net.b.call_info(first).call_id
    assert net.b.authenticate(first, "alice", "pw").verdict is DigestVerdict.MISSING
    net.b.challenge(first, net.now)
    net.flush()
    second = incoming(net)
    assert second != first
    assert net.b.authenticate(second, "alice", "pw").verdict is DigestVerdict.OK
    info = net.b.call_info(second)
    assert info.invite.cseq.seq == 2 and info.call_id == first_call_id
    net.b.answer(second, media(B_HOST), net.now)
    net.flush()
    assert net.of("a", CallAnswered) and net.a.state(out) is CallState.CONFIRMED
    net.a.hangup(out, net.now)
    net.flush()
    assert net.of("b", CallEnded)


def test_wrong_password_fails_after_one_retry() -> None:
    net = Net()
    place_call(net, credentials=DigestCredentials("alice", "bad"))
    net.b.challenge(incoming(net), net.now)
    net.flush()
    second = incoming(net)
    assert net.b.authenticate(second, "alice", "pw").verdict is DigestVerdict.REJECTED
    net.b.challenge(second, net.now)
    net.flush()
    assert net.of("a", CallEnded)[0].status == 401


def test_busy_reject() -> None:
    net = Net()
    place_call(net)
    net.b.reject(incoming(net), 486, net.now)
    net.flush()
    ended = net.of("a", CallEnded)[0]
    assert ended.reason == "rejected" and ended.status == 486
    assert net.sent("ACK")


def test_hold_unhold_reinvite_answered_with_mirrored_direction() -> None:
    net = Net()
    out, _ = established(net)
    for direction, expected in (("sendonly", "recvonly"), ("sendrecv", "sendrecv")):
        net.a.reinvite(out, net.now, direction=direction)
        net.flush()
        assert net.of("b", MediaUpdated)[-1].media.direction == expected
        answer = [m for m in net.log if m.startswith(b"SIP/2.0 200") and b"CSeq: " in m][-1]
        assert f"a={expected}".encode() in answer


def test_dtmf_info_and_refer_with_notify() -> None:
    net = Net()
    out, inbound = established(net)
    net.a.send_info(out, "5", net.now, duration_ms=160)
    net.flush()
    dtmf = net.of("b", DtmfReceived)[0]
    assert (dtmf.digit, dtmf.duration_ms) == ("5", 160)
    net.b.refer(inbound, "tel:+15105550100", net.now, headers={"X-Reason": "agent"})
    net.flush()
    refer = parse_message(net.sent("REFER")[0])
    assert isinstance(refer, Request) and refer.headers.get("Refer-To") == "<tel:+15105550100>"
    assert refer.headers.get("X-Reason") == "agent" and refer.headers.get("Referred-By")
    # Our agent is no transferee: it refuses the REFER, which the transferor sees as a failed transfer.
    assert net.sent("SIP/2.0 405")
    progress = net.of("b", TransferProgress)[0]
    assert progress.final and not progress.succeeded


def test_notify_sipfrag_progress_reaches_transferor() -> None:
    net = Net()
    _, inbound = established(net)
    for seq, (status, state) in enumerate((("100 Trying", "active"), ("200 OK", "terminated;reason=noresource"))):
        headers = f"Event: refer\r\nSubscription-State: {state}\r\nContent-Type: message/sipfrag\r\n"
        request_from_caller(net, inbound, "NOTIFY", 10 + seq, headers, f"SIP/2.0 {status}\r\n".encode())
    progress = net.of("b", TransferProgress)
    assert [(p.status, p.final) for p in progress] == [(100, False), (200, True)] and progress[-1].succeeded


def test_session_timer_refresh_by_update_and_expiry() -> None:
    net = Net()
    out, inbound = established(net)
    assert net.b.call_info(inbound).session_interval == 1800 and net.a.call_info(out).session_interval == 1800
    net.advance(900.0)  # the caller is the refresher (it supports timer) and uses UPDATE (allowed)
    assert net.sent("UPDATE") and net.a.state(out) is CallState.CONFIRMED
    net.drop = lambda data: not data.startswith(b"SIP/2.0") and b"From: <sip:alice" in data  # caller goes mute
    net.advance(900.0 + 1800.0)
    assert net.of("b", CallEnded)[0].reason == "session-expired"


def _raw_invite(body: str = "", branch: str = "z9hG4bKraw1", extra: str = "") -> bytes:
    head = (
        f"INVITE sip:bob@{B_HOST}:5070 SIP/2.0\r\nVia: SIP/2.0/UDP {A_HOST}:5060;branch={branch};rport\r\n"
        f"From: <sip:carrier@{A_HOST}>;tag=c1\r\nTo: <sip:bob@{B_HOST}>\r\nCall-ID: raw-1\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:carrier@{A_HOST}:5060>\r\nMax-Forwards: 70\r\n{extra}"
    )
    if body:
        head += "Content-Type: application/sdp\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n{body}".encode()


def test_delayed_offer_answer_in_ack() -> None:
    net = Net()
    net.b.receive_datagram(_raw_invite(), Address("UDP", A_HOST, 5060), 0.0)
    call = net.b.next_event()
    assert isinstance(call, IncomingCall) and net.b.call_info(call.handle).offer is None
    net.b.answer(call.handle, media(B_HOST), 0.0)
    sent = [parse_message(d) for d, _ in net.b.datagrams_to_send()]
    ok = sent[-1]
    assert isinstance(ok, Response) and ok.status == 200 and b"m=audio 40000 RTP/AVP 0 8 101" in ok.body
    answer = media(A_HOST).receive_offer(parse_sdp(ok.body))
    ack = (
        f"ACK sip:sipbridge@{B_HOST}:5070 SIP/2.0\r\nVia: SIP/2.0/UDP {A_HOST}:5060;branch=z9hG4bKack\r\n"
        f"From: <sip:carrier@{A_HOST}>;tag=c1\r\nTo: {ok.headers.get('To')}\r\nCall-ID: raw-1\r\nCSeq: 1 ACK\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(answer.to_bytes())}\r\n\r\n"
    ).encode() + answer.to_bytes()
    net.b.receive_datagram(ack, Address("UDP", A_HOST, 5060), 0.1)
    acked = net.b.next_event()
    assert isinstance(acked, CallAcked) and acked.media is not None and acked.media.codec.name == "PCMU"


def test_no_common_codec_answers_488() -> None:
    net = Net()
    sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\n"
    net.b.receive_datagram(_raw_invite(sdp), Address("UDP", A_HOST, 5060), 0.0)
    event = net.b.next_event()
    assert isinstance(event, IncomingCall)
    with pytest.raises(Exception, match="codec"):
        net.b.answer(event.handle, media(B_HOST), 0.0)
    assert any(d.startswith(b"SIP/2.0 488") for d, _ in net.b.datagrams_to_send())


def test_malformed_answered_400_or_hidden_and_rport_routing() -> None:
    agent = UserAgent(SipSettings(), local_host=B_HOST)
    bad = _raw_invite().replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE")
    agent.receive_datagram(bad, Address("UDP", "192.0.2.50", 40123), 0.0)
    [(data, dest)] = agent.datagrams_to_send()
    assert data.startswith(b"SIP/2.0 400") and dest == Address("UDP", "192.0.2.50", 40123)
    assert b"rport=40123;received=192.0.2.50" in data
    agent.receive_datagram(b"\x00garbage\r\n\r\n", Address("UDP", "192.0.2.50", 40123), 0.0)
    assert agent.datagrams_to_send() == []
    hidden = UserAgent(SipSettings(hide_inbound_port=True), local_host=B_HOST)
    hidden.receive_datagram(bad, Address("UDP", "192.0.2.50", 40123), 0.0)
    assert hidden.datagrams_to_send() == []
    hidden.receive_datagram(_raw_invite(), Address("UDP", "192.0.2.50", 40123), 0.0)
    assert hidden.datagrams_to_send() == []  # no 100 Trying before the call flow decides
    event = hidden.next_event()
    assert isinstance(event, IncomingCall)
    hidden.trying(event.handle, 0.0)  # the call flow may still say "we are working on it" once it knows the caller
    [(trying, _)] = hidden.datagrams_to_send()
    assert trying.startswith(b"SIP/2.0 100") and b";tag=" not in trying.split(b"To:")[1].split(b"\r\n")[0]
    hidden.drop(event.handle, 0.0)
    assert hidden.datagrams_to_send() == [] and hidden.active_calls == 0


@pytest.mark.parametrize(("method", "status"), [("OPTIONS", 200), ("REGISTER", 405), ("FOO", 501)])
def test_out_of_dialog_methods(method: str, status: int) -> None:
    agent = UserAgent(SipSettings(), local_host=B_HOST)
    raw = _raw_invite().replace(b"INVITE", method.encode())
    agent.receive_datagram(raw, Address("UDP", A_HOST, 5060), 0.0)
    [(data, _)] = agent.datagrams_to_send()
    assert data.startswith(f"SIP/2.0 {status}".encode())
    if status != 200:
        assert b"Allow: INVITE" in data


def test_require_unknown_extension_is_420() -> None:
    agent = UserAgent(SipSettings(), local_host=B_HOST)
    agent.receive_datagram(_raw_invite(extra="Require: 100rel, foo\r\n"), Address("UDP", A_HOST, 5060), 0.0)
    out = [d for d, _ in agent.datagrams_to_send()]
    assert out[-1].startswith(b"SIP/2.0 420") and b"Unsupported: foo\r\n" in out[-1]


def test_record_route_path_is_followed_by_ack_and_bye() -> None:
    agent = UserAgent(SipSettings(), local_host=A_HOST)
    call = agent.invite(f"sip:bob@{B_HOST}", media(A_HOST), 0.0, from_uri=f"sip:alice@{A_HOST}")
    [(data, _)] = agent.datagrams_to_send()
    invite = parse_message(data)
    assert isinstance(invite, Request)
    sdp = media(B_HOST).receive_offer(parse_sdp(invite.body))
    lines = [
        "SIP/2.0 200 OK",
        f"Via: {invite.headers.get('Via')}",
        "Record-Route: <sip:p2.example.net;lr>",
        "Record-Route: <sip:p1.example.net:5080;lr>",
        f"From: {invite.headers.get('From')}",
        f"To: {invite.headers.get('To')};tag=callee",
        f"Call-ID: {invite.call_id}",
        "CSeq: 1 INVITE",
        f"Contact: <sip:bob@{B_HOST}:5070>",
        "Content-Type: application/sdp",
        f"Content-Length: {len(sdp.to_bytes())}",
    ]
    agent.receive_datagram(
        ("\r\n".join(lines) + "\r\n\r\n").encode() + sdp.to_bytes(), Address("UDP", B_HOST, 5070), 0.1
    )
    [(ack_data, ack_dest)] = agent.datagrams_to_send()
    ack = parse_message(ack_data)
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack_dest == Address("UDP", "p1.example.net", 5080)
    assert ack.headers.get_all("Route") == ["<sip:p1.example.net:5080;lr>", "<sip:p2.example.net;lr>"]
    assert str(ack.uri) == f"sip:bob@{B_HOST}:5070"
    agent.hangup(call, 0.2)
    [(bye_data, bye_dest)] = agent.datagrams_to_send()
    assert bye_data.startswith(b"BYE") and bye_dest == ack_dest


def test_session_interval_below_min_se_is_422() -> None:
    agent = UserAgent(SipSettings(), local_host=B_HOST)
    agent.receive_datagram(_raw_invite(extra="Session-Expires: 30\r\n"), Address("UDP", A_HOST, 5060), 0.0)
    out = [d for d, _ in agent.datagrams_to_send()]
    assert out[-1].startswith(b"SIP/2.0 422") and b"Min-SE: 90" in out[-1]


def _answer_invite(invite: Request, status: int, to_tag: str, *, extra: str = "", body: bytes = b"") -> bytes:
    lines = [
        f"SIP/2.0 {status} Whatever",
        f"Via: {invite.headers.get('Via')}",
        f"From: {invite.headers.get('From')}",
        f"To: {invite.headers.get('To')};tag={to_tag}",
        f"Call-ID: {invite.call_id}",
        f"CSeq: {invite.cseq.seq} INVITE",
        f"Contact: <sip:{to_tag}@{B_HOST}:5070>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    return ("\r\n".join(lines) + f"\r\n{extra}Content-Length: {len(body)}\r\n\r\n").encode() + body


def _sent_invite(agent: UserAgent) -> Request:
    invite = parse_message(agent.datagrams_to_send()[-1][0])
    assert isinstance(invite, Request) and invite.method == "INVITE"
    return invite


def test_422_is_retried_with_the_peers_min_se() -> None:
    agent = UserAgent(SipSettings(), local_host=A_HOST)
    agent.invite(f"sip:bob@{B_HOST}", media(A_HOST), 0.0, from_uri=f"sip:alice@{A_HOST}")
    invite = _sent_invite(agent)
    assert invite.headers.get("Session-Expires") == "1800"
    agent.receive_datagram(
        _answer_invite(invite, 422, "x", extra="Min-SE: 3600\r\n"), Address("UDP", B_HOST, 5070), 0.1
    )
    sent = [parse_message(d) for d, _ in agent.datagrams_to_send()]
    retry = sent[-1]
    assert isinstance(retry, Request) and retry.method == "INVITE" and retry.cseq.seq == 2
    assert retry.headers.get("Session-Expires") == "3600" and retry.top_via.branch != invite.top_via.branch


def test_early_media_and_forked_second_answer_is_released() -> None:
    net = Net()
    call = net.a.invite(f"sip:bob@{B_HOST}", media(A_HOST), 0.0, from_uri=f"sip:alice@{A_HOST}")
    invite = _sent_invite(net.a)
    answer_sdp = media(B_HOST).receive_offer(parse_sdp(invite.body)).to_bytes()
    source = Address("UDP", B_HOST, 5070)
    net.a.receive_datagram(_answer_invite(invite, 183, "fork1", body=answer_sdp), source, 0.1)
    net.a.receive_datagram(_answer_invite(invite, 200, "fork1", body=answer_sdp), source, 0.2)
    net.a.receive_datagram(_answer_invite(invite, 200, "fork2", body=answer_sdp), source, 0.3)
    events = []
    while (event := net.a.next_event()) is not None:
        events.append(event)
    progress = [e for e in events if isinstance(e, CallProgress)]
    assert progress[0].status == 183 and progress[0].media is not None
    assert sum(isinstance(e, CallAnswered) for e in events) == 1
    assert net.a.call_info(call).remote_tag == "fork1"
    sent = [parse_message(d) for d, _ in net.a.datagrams_to_send()]
    to_fork2 = [m for m in sent if isinstance(m, Request) and m.to.tag == "fork2"]
    assert [m.method for m in to_fork2] == ["ACK", "BYE"]


def test_inbound_early_media_then_answer_uses_the_same_sdp() -> None:
    net = Net()
    place_call(net)
    inbound = incoming(net)
    session = media(B_HOST)
    net.b.progress(inbound, session, net.now)
    net.flush()
    net.b.answer(inbound, session, net.now)
    net.flush()
    early = parse_message(net.sent("SIP/2.0 183")[0])
    final = parse_message(next(m for m in net.sent("SIP/2.0 200") if b" INVITE\r\n" in m))
    assert early.body and early.body == final.body
    assert net.of("a", CallProgress)[-1].media is not None


@pytest.mark.parametrize(("method", "status"), [("BYE", 401), ("REFER", 407)])
def test_in_dialog_requests_answer_digest_challenges(method: str, status: int) -> None:
    net = Net()
    out, _ = established(net, credentials=DigestCredentials("alice", "pw"))
    net.drop = lambda data: data.startswith(method.encode())  # we play the challenging far end ourselves
    if method == "BYE":
        net.a.hangup(out, net.now)
    else:
        net.a.refer(out, "sip:carol@10.0.0.3", net.now)
    net.flush()
    first = parse_message(net.sent(method)[-1])
    assert isinstance(first, Request)
    header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    challenge = f'{header}: Digest realm="far", nonce="n1", qop="auth"\r\n'
    lines = [
        f"SIP/2.0 {status} Auth",
        *(f"{n}: {v}" for n, v in first.headers if n in ("Via", "From", "To", "Call-ID", "CSeq")),
    ]
    net.a.receive_datagram(
        ("\r\n".join(lines) + "\r\n" + challenge + "Content-Length: 0\r\n\r\n").encode(),
        Address("UDP", B_HOST, 5070),
        net.now,
    )
    net.flush()
    retry = parse_message(net.sent(method)[-1])
    assert isinstance(retry, Request) and retry.cseq.seq == first.cseq.seq + 1
    auth = retry.headers.get("Authorization" if status == 401 else "Proxy-Authorization")
    assert auth is not None and 'realm="far"' in auth and "qop=auth" in auth


def test_update_with_hold_offer_is_answered_recvonly() -> None:
    net = Net()
    _, inbound = established(net)
    offer = media(A_HOST).create_offer("sendonly").to_bytes()
    request_from_caller(net, inbound, "UPDATE", 10, "Content-Type: application/sdp\r\n", offer)
    assert net.of("b", MediaUpdated)[-1].media.direction == "recvonly"
    assert b"a=recvonly" in net.sent("SIP/2.0 200")[-1]


def test_zero_max_forwards_is_483_and_rfc2543_invite_is_served() -> None:
    agent = UserAgent(SipSettings(), local_host=B_HOST)
    agent.receive_datagram(
        _raw_invite(extra="").replace(b"Max-Forwards: 70", b"Max-Forwards: 0"), Address("UDP", A_HOST, 5060), 0
    )
    assert agent.datagrams_to_send()[-1][0].startswith(b"SIP/2.0 483")
    old = _raw_invite().replace(b";branch=z9hG4bKraw1", b"").replace(b"Call-ID: raw-1", b"Call-ID: old-1")
    agent.receive_datagram(old, Address("UDP", A_HOST, 5060), 0.0)
    agent.receive_datagram(old, Address("UDP", A_HOST, 5060), 0.1)  # a retransmission, matched without a branch
    events = [agent.next_event(), agent.next_event()]
    assert isinstance(events[0], IncomingCall) and events[1] is None
    assert [d[:11] for d, _ in agent.datagrams_to_send()] == [b"SIP/2.0 100"] * 2


def test_delayed_offer_ack_without_answer_ends_call() -> None:
    agent = UserAgent(SipSettings(), local_host=B_HOST)
    agent.receive_datagram(_raw_invite(), Address("UDP", A_HOST, 5060), 0.0)
    event = agent.next_event()
    assert isinstance(event, IncomingCall)
    agent.progress(event.handle, media(B_HOST), 0.0)
    agent.answer(event.handle, media(B_HOST), 0.0)
    sent = [parse_message(d) for d, _ in agent.datagrams_to_send()]
    early = [m for m in sent if isinstance(m, Response) and m.status == 183]
    assert early and early[0].body == b""  # no offer on an unreliable provisional
    ok = sent[-1]
    assert isinstance(ok, Response) and ok.status == 200
    ack = (
        f"ACK sip:sipbridge@{B_HOST}:5070 SIP/2.0\r\nVia: SIP/2.0/UDP {A_HOST}:5060;branch=z9hG4bKack\r\n"
        f"From: <sip:carrier@{A_HOST}>;tag=c1\r\nTo: {ok.headers.get('To')}\r\nCall-ID: raw-1\r\nCSeq: 1 ACK\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    agent.receive_datagram(ack, Address("UDP", A_HOST, 5060), 0.1)
    ended = agent.next_event()
    assert isinstance(ended, CallEnded) and ended.status == 488
    assert agent.datagrams_to_send()[-1][0].startswith(b"BYE")


def test_multipart_invite_offer_and_unsupported_body() -> None:
    sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    body = (
        f"--b1\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n"
        "--b1\r\nContent-Type: application/isup\r\n\r\nX\r\n--b1--\r\n"
    )
    raw = _raw_invite(body).replace(b"Content-Type: application/sdp", b"Content-Type: multipart/mixed;boundary=b1", 1)
    agent = UserAgent(SipSettings(), local_host=B_HOST)
    agent.receive_datagram(raw, Address("UDP", A_HOST, 5060), 0.0)
    event = agent.next_event()
    assert isinstance(event, IncomingCall)
    offer = agent.call_info(event.handle).offer
    assert offer is not None and offer.media[0].port == 4000
    text = (
        _raw_invite("hello", branch="z9hG4bKtext")
        .replace(b"application/sdp", b"text/plain")
        .replace(b"raw-1", b"raw-2")
    )
    agent.receive_datagram(text, Address("UDP", A_HOST, 5060), 0.0)
    assert agent.datagrams_to_send()[-1][0].startswith(b"SIP/2.0 415")


def test_bye_overtaking_the_ack_stops_2xx_retransmission() -> None:
    net = Net()
    out = place_call(net)
    inbound = incoming(net)
    net.drop = lambda data: data.startswith(b"ACK")
    net.b.answer(inbound, media(B_HOST), net.now)
    net.flush()
    net.a.hangup(out, net.now)
    net.flush()
    assert net.of("b", CallEnded)[0].reason == "bye"
    net.log.clear()
    net.advance(40.0)
    assert not net.sent("SIP/2.0 200")  # no more 2xx retransmissions for the ended call


def test_nothing_is_left_behind_after_many_calls() -> None:
    """A long-running node must not accumulate calls, transactions or timers."""
    net = Net()
    for _ in range(50):
        out, inbound = established(net)
        if net.now % 2:
            net.a.hangup(out, net.now)
        else:
            net.b.hangup(inbound, net.now)
        net.flush()
        net.advance(net.now + 1.0)
    net.advance(net.now + 64 * 0.5 + 5)
    for agent in (net.a, net.b):
        assert agent.active_calls == 0
        assert not agent.transactions.clients and not agent.transactions.servers
        assert agent.get_timer() is None and agent.internal_errors == 0


def test_inbound_stream_call_uses_its_connection_then_falls_back_to_contact() -> None:
    agent = UserAgent(SipSettings(), local_host=B_HOST)
    flow = Address("TCP", A_HOST, 40001)  # the caller's ephemeral source port
    sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    invite = _raw_invite(sdp).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP").replace(b":5060>", b":5060;transport=tcp>")
    agent.receive_datagram(invite, flow, 0.0)
    event = agent.next_event()
    assert isinstance(event, IncomingCall) and agent.carries_calls(flow)
    agent.answer(event.handle, media(B_HOST), 0.0)
    ok = parse_message(agent.datagrams_to_send()[-1][0])
    ack = (
        f"ACK sip:sipbridge@{B_HOST}:5060;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP {A_HOST}:5060;branch=z9hG4bKa\r\n"
        f"From: <sip:carrier@{A_HOST}>;tag=c1\r\nTo: {ok.headers.get('To')}\r\nCall-ID: raw-1\r\nCSeq: 1 ACK\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    agent.receive_datagram(ack, flow, 0.1)
    agent.send_info(event.handle, "1", 0.2)
    assert agent.datagrams_to_send()[-1][1] == flow
    agent.connection_lost(flow)  # the caller closed the connection
    agent.hangup(event.handle, 0.3)
    assert agent.datagrams_to_send()[-1][1] == Address("TCP", A_HOST, 5060)


def test_reinvite_glare_with_our_refresh_is_491() -> None:
    agent = UserAgent(SipSettings(), local_host=B_HOST)
    source = Address("UDP", A_HOST, 5060)
    sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    agent.receive_datagram(
        _raw_invite(sdp, extra="Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n"), source, 0
    )
    event = agent.next_event()
    assert isinstance(event, IncomingCall)
    agent.answer(event.handle, media(B_HOST), 0.0)
    ok = parse_message(agent.datagrams_to_send()[-1][0])
    assert ok.headers.get("Session-Expires") == "90;refresher=uas"
    in_dialog = (
        f"Via: SIP/2.0/UDP {A_HOST}:5060;branch=z9hG4bK{{b}}\r\nFrom: <sip:carrier@{A_HOST}>;tag=c1\r\n"
        f"To: {ok.headers.get('To')}\r\nCall-ID: raw-1\r\n"
    )
    ack = (
        f"ACK sip:sipbridge@{B_HOST}:5060 SIP/2.0\r\n{in_dialog.format(b='a')}CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    )
    agent.receive_datagram(ack.encode(), source, 0.1)
    agent.handle_timer(45.1)  # we are the refresher; no UPDATE in the caller's Allow: a re-INVITE
    assert agent.datagrams_to_send()[-1][0].startswith(b"INVITE")
    theirs = (
        f"INVITE sip:sipbridge@{B_HOST}:5060 SIP/2.0\r\n{in_dialog.format(b='r2')}CSeq: 2 INVITE\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
    )
    agent.receive_datagram(theirs.encode(), source, 45.2)
    assert agent.datagrams_to_send()[-1][0].startswith(b"SIP/2.0 491")


def test_ack_for_2xx_reusing_the_invite_branch_still_confirms_the_call() -> None:
    agent = UserAgent(SipSettings(), local_host=B_HOST)
    sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    agent.receive_datagram(_raw_invite(sdp), Address("UDP", A_HOST, 5060), 0.0)
    event = agent.next_event()
    assert isinstance(event, IncomingCall)
    agent.answer(event.handle, media(B_HOST), 0.0)
    ok = parse_message(agent.datagrams_to_send()[-1][0])
    ack = (
        f"ACK sip:sipbridge@{B_HOST}:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {A_HOST}:5060;branch=z9hG4bKraw1;rport\r\n"
        f"From: <sip:carrier@{A_HOST}>;tag=c1\r\nTo: {ok.headers.get('To')}\r\nCall-ID: raw-1\r\nCSeq: 1 ACK\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    agent.receive_datagram(ack.encode(), Address("UDP", A_HOST, 5060), 0.1)
    assert isinstance(agent.next_event(), CallAcked)


def test_merged_invite_by_another_path_is_482() -> None:
    agent = UserAgent(SipSettings(), local_host=B_HOST)
    agent.receive_datagram(_raw_invite(), Address("UDP", A_HOST, 5060), 0.0)
    assert isinstance(agent.next_event(), IncomingCall)
    agent.receive_datagram(_raw_invite(branch="z9hG4bKpath2"), Address("UDP", A_HOST, 5060), 0.1)
    assert agent.next_event() is None
    assert agent.datagrams_to_send()[-1][0].startswith(b"SIP/2.0 482")


def test_our_hold_and_resume_reinvites() -> None:
    net = Net()
    out, _ = established(net)
    net.a.reinvite(out, net.now, direction="sendonly")
    net.flush()
    assert net.of("b", MediaUpdated)[-1].media.direction == "recvonly"
    assert net.of("a", MediaUpdated)[-1].media.direction == "sendonly"
    net.a.reinvite(out, net.now)
    net.flush()
    assert net.of("a", MediaUpdated)[-1].media.direction == "sendrecv"
    assert net.of("b", MediaUpdated)[-1].media.direction == "sendrecv"


def test_unanswered_invites_beyond_the_limit_get_503() -> None:
    agent = UserAgent(SipSettings(max_pending_invites=2), local_host=B_HOST)
    source = Address("UDP", A_HOST, 5060)
    for i in range(3):
        agent.receive_datagram(_raw_invite(branch=f"z9hG4bKp{i}").replace(b"raw-1", f"call-{i}".encode()), source, 0)
    calls = [agent.next_event(), agent.next_event(), agent.next_event()]
    assert [isinstance(c, IncomingCall) for c in calls] == [True, True, False]
    last = agent.datagrams_to_send()[-1][0]
    assert last.startswith(b"SIP/2.0 503") and b"Retry-After: 1" in last
    first = calls[0]
    assert isinstance(first, IncomingCall)
    agent.reject(first.handle, 486, 0.1)  # one slot frees up
    agent.receive_datagram(_raw_invite(branch="z9hG4bKp9").replace(b"raw-1", b"call-9"), source, 0.2)
    assert isinstance(agent.next_event(), CallEnded) and isinstance(agent.next_event(), IncomingCall)


def test_overloaded_agent_refuses_new_invites_but_serves_its_calls() -> None:
    net = Net()
    out, _ = established(net)
    net.b.overloaded = True  # what the edge sets when its event loop runs late
    place_call(net)
    assert net.sent("SIP/2.0 503") and net.of("a", CallEnded)[-1].status == 503
    net.a.hangup(out, net.now)
    net.flush()
    assert net.of("b", CallEnded)[-1].reason == "bye"


def test_an_action_the_state_does_not_allow_raises_and_sends_nothing() -> None:
    net = Net()
    out, inbound = established(net)
    net.log.clear()
    with pytest.raises(LocalProtocolError, match="answer is not allowed in state confirmed"):
        net.b.answer(inbound, media(B_HOST), net.now)
    with pytest.raises(LocalProtocolError, match=r"ring is not allowed in state confirmed: .* outbound"):
        net.a.ring(out, net.now)
    with pytest.raises(LocalProtocolError, match="cancel is not allowed in state confirmed"):
        net.a.cancel(out, net.now)  # answered: too late to CANCEL, hang up instead
    with pytest.raises(LocalProtocolError, match="unknown"):
        net.a.hangup(CallHandle(99), net.now)
    net.flush()
    assert not net.log and net.a.state(out) is net.b.state(inbound) is CallState.CONFIRMED


def test_giving_up_on_an_ended_call_is_harmless_going_on_with_it_raises() -> None:
    net = Net()
    out = place_call(net)
    inbound = incoming(net)
    net.a.hangup(out, net.now)  # the caller's CANCEL crosses whatever the callee's owner decides next
    net.flush()
    assert net.b.state(inbound) is net.a.state(out) is CallState.ENDED
    net.log.clear()
    net.b.trying(inbound, net.now)
    net.b.ring(inbound, net.now)
    net.b.progress(inbound, media(B_HOST), net.now)
    net.b.challenge(inbound, net.now)
    net.b.reject(inbound, 486, net.now)
    net.b.drop(inbound, net.now)
    net.b.hangup(inbound, net.now)
    net.a.cancel(out, net.now)
    net.a.hangup(out, net.now)
    net.flush()
    assert not net.log
    with pytest.raises(LocalProtocolError, match="answer is not allowed in state ended"):
        net.b.answer(inbound, media(B_HOST), net.now)
    with pytest.raises(LocalProtocolError, match="authenticate"):
        net.b.authenticate(inbound, "alice", "pw")
    with pytest.raises(LocalProtocolError, match="send_info"):
        net.a.send_info(out, "1", net.now)
    with pytest.raises(LocalProtocolError, match="call_info"):
        net.a.call_info(out)


def test_hanging_up_twice_sends_one_bye_and_the_end_keeps_the_final_response() -> None:
    net = Net()
    out, _ = established(net)
    net.a.hangup(out, net.now)
    net.a.hangup(out, net.now)  # our BYE is out: nothing more to do
    net.flush()
    assert len(net.sent("BYE")) == 1
    ended = net.of("a", CallEnded)[0]
    assert ended.handle == out and ended.final_response is not None and ended.final_response.status == 200
