"""Outbound registration (RFC 3261 §10) driven by hand-written registrar answers on a fake clock: digest, 423,
refresh, back-off, NAT Contact moves, keep-alives, un-REGISTER, and calls recognised as sent over it."""

from __future__ import annotations

from sipbridge.sip.auth import DigestCredentials
from sipbridge.sip.events import IncomingCall, RegistrationChanged
from sipbridge.sip.message import Request, parse_message
from sipbridge.sip.registration import TOKEN_PARAM, RegistrationSpec
from sipbridge.sip.settings import SipSettings
from sipbridge.sip.transaction import Address
from sipbridge.sip.uri import SipUri, parse_uri
from sipbridge.sip.useragent import UserAgent

REGISTRAR = Address("UDP", "192.0.2.50", 5060)
CHALLENGE = 'Digest realm="pbx", nonce="abc123", algorithm=MD5, qop="auth"'


class Registrar:
    """Our agent registering with a registrar whose answers the test writes."""

    def __init__(self, **spec: object) -> None:
        self.ua = UserAgent(SipSettings(port=5060), local_host="10.0.0.1")
        self.now = 0.0
        registrar = parse_uri("sip:pbx.example")
        aor = parse_uri("sip:1001@pbx.example")
        assert isinstance(registrar, SipUri) and isinstance(aor, SipUri)
        fields: dict[str, object] = {
            "name": "pbx", "registrar": registrar, "aor": aor, "destination": REGISTRAR,
            "credentials": DigestCredentials("1001", "secret"), "expires": 600, **spec,
        }  # fmt: skip
        self.handle = self.ua.register(RegistrationSpec(**fields), self.now)  # type: ignore[arg-type]

    def sent(self) -> list[Request]:
        out = []
        for data, dest in self.ua.datagrams_to_send():
            message = parse_message(data)
            if isinstance(message, Request):
                assert dest == REGISTRAR
                out.append(message)
        return out

    def answer(self, request: Request, status: int, *extra: str, via: str | None = None) -> None:
        lines = [f"SIP/2.0 {status} X", f"Via: {via or request.headers.get('Via')}"]
        lines += [f"{name}: {request.headers.get(name)}" for name in ("From", "To", "Call-ID", "CSeq")]
        lines += [*extra, "Content-Length: 0", "", ""]
        self.ua.receive_datagram("\r\n".join(lines).encode(), REGISTRAR, self.now)

    def ok(self, request: Request, expires: int, via: str | None = None) -> None:
        contact = request.headers.get("Contact")
        self.answer(request, 200, f"Contact: {contact};expires={expires}", via=via)

    def advance(self, until: float) -> None:
        while (due := self.ua.get_timer()) is not None and due <= until:
            self.now = due
            self.ua.handle_timer(due)
        self.now = until

    def states(self) -> list[tuple[str, int | None]]:
        events = [e for e in iter(self.ua.next_event, None) if isinstance(e, RegistrationChanged)]
        return [(e.state, e.status) for e in events]


def test_digest_then_registered_and_refreshed_at_half_a_short_interval() -> None:
    r = Registrar()
    (first,) = r.sent()
    assert first.method == "REGISTER" and str(first.uri) == "sip:pbx.example"
    assert first.headers.get("Expires") == "600" and TOKEN_PARAM in (first.headers.get("Contact") or "")
    r.answer(first, 401, f"WWW-Authenticate: {CHALLENGE}")
    (second,) = r.sent()
    assert 'username="1001"' in (second.headers.get("Authorization") or "")
    assert second.call_id == first.call_id and second.cseq.seq == first.cseq.seq + 1
    r.ok(second, 90)
    assert r.states() == [("registered", 200)]
    assert r.ua.registration(r.handle).expires_at == 90
    r.advance(44.9)
    assert not [m for m in r.sent() if m.method == "REGISTER"]
    r.advance(45.0)
    (refresh,) = [m for m in r.sent() if m.method == "REGISTER"]
    assert refresh.call_id == first.call_id and refresh.cseq.seq > second.cseq.seq


def test_423_raises_the_interval_to_min_expires() -> None:
    r = Registrar(expires=60)
    (first,) = r.sent()
    r.answer(first, 423, "Min-Expires: 300")
    (second,) = r.sent()
    assert second.headers.get("Expires") == "300"
    r.ok(second, 300)
    assert r.states() == [("registered", 200)]


def test_failures_back_off_and_retry_after_is_honoured() -> None:
    r = Registrar(credentials=None)
    (first,) = r.sent()
    r.answer(first, 503, "Retry-After: 20")
    assert r.states() == [("failing", 503)]
    r.advance(19.9)
    assert not r.sent()
    r.advance(20.0)
    (second,) = r.sent()
    r.answer(second, 403)
    assert r.states() == [("failing", 403)]
    r.advance(29.9)  # the second failure waits 2 x 5 s
    assert not r.sent()
    r.advance(30.0)
    (third,) = r.sent()
    r.ok(third, 600)
    assert r.states() == [("registered", 200)]


def test_an_unanswered_register_fails_with_408() -> None:
    r = Registrar()
    r.sent()
    r.advance(32.0)  # timer F
    assert ("failing", 408) in r.states()


def test_contact_moves_to_the_address_the_registrar_sees() -> None:
    r = Registrar(credentials=None)
    (first,) = r.sent()
    via = f"{first.headers.get('Via')};received=203.0.113.9".replace(";rport", ";rport=40000")
    r.ok(first, 600, via=via)
    (second,) = r.sent()
    contacts = second.headers.get_all("Contact")
    assert contacts[0].startswith("<sip:sipbridge@203.0.113.9:40000")
    assert contacts[1].startswith("<sip:sipbridge@10.0.0.1:5060") and contacts[1].endswith(";expires=0")
    r.ok(second, 600, via=f"{second.headers.get('Via')};received=203.0.113.9".replace(";rport", ";rport=40000"))
    assert r.states() == [("registered", 200)]
    assert not r.sent()  # settled: the registrar sees us where our Contact says


def test_unanswered_keepalive_registers_again() -> None:
    r = Registrar(credentials=None, keepalive_interval=20.0)
    (first,) = r.sent()
    r.ok(first, 3600)
    r.advance(20.0)
    (options,) = r.sent()
    assert options.method == "OPTIONS"
    r.advance(52.0)  # the OPTIONS times out (timer F): the binding may be gone, register again at once
    assert [m.method for m in r.sent() if m.method == "REGISTER"] == ["REGISTER"]


def test_unregister_sends_expires_zero() -> None:
    r = Registrar(credentials=None)
    (first,) = r.sent()
    r.ok(first, 600)
    r.ua.unregister(r.handle, r.now)
    (gone,) = r.sent()
    assert gone.headers.get("Expires") == "0"
    r.ok(gone, 0)
    assert r.states() == [("registered", 200), ("unregistering", 200), ("unregistered", 200)]
    r.advance(3600.0)
    assert not r.sent()  # no refresh after that


def invite_to(contact: str, source: Address) -> bytes:
    uri = contact.strip("<>")
    return (
        f"INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {source.host}:{source.port};branch=z9hG4bKreg1\r\n"
        f"From: <sip:caller@pbx.example>;tag=c1\r\nTo: <sip:1001@pbx.example>\r\nCall-ID: reg-call-{source.host}\r\n"
        f"CSeq: 1 INVITE\r\nContact: <sip:caller@{source.host}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_a_call_to_our_contact_from_the_registrar_is_recognised() -> None:
    r = Registrar(credentials=None)
    (first,) = r.sent()
    r.ok(first, 600)
    r.states()
    contact = first.headers.get("Contact") or ""
    r.ua.receive_datagram(invite_to(contact, REGISTRAR), REGISTRAR, r.now)
    stranger = Address("UDP", "198.51.100.66", 5060)
    r.ua.receive_datagram(invite_to(contact, stranger), stranger, r.now)
    calls = [e for e in iter(r.ua.next_event, None) if isinstance(e, IncomingCall)]
    assert [r.ua.call_info(c.handle).registration for c in calls] == ["pbx", None]
