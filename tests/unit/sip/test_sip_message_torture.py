"""Parser torture cases written from the descriptions in RFC 4475 (our own messages, same traps)."""

from __future__ import annotations

import pytest

from sipbridge.sip.errors import SipParseError
from sipbridge.sip.message import MessageError, Request, Response, StreamFramer, parse_message, response_to
from sipbridge.sip.uri import AbsoluteUri, SipUri, TelUri, parse_name_addr, parse_uri


def msg(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


BASE = """INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
To: Bob <sip:bob@example.com>
From: Alice <sip:alice@example.org>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.example.org
CSeq: 314159 INVITE
Contact: <sip:alice@192.0.2.1>
Content-Length: 0

"""


def test_plain_invite_roundtrip() -> None:
    m = parse_message(msg(BASE))
    assert isinstance(m, Request)
    assert m.method == "INVITE"
    assert m.cseq.seq == 314159
    assert m.from_.tag == "1928301774"
    assert m.to.display_name == "Bob"
    again = parse_message(m.to_bytes())
    assert isinstance(again, Request)
    assert list(again.headers) == list(m.headers)


def test_wsinv_folding_and_whitespace() -> None:
    # Line folding, tabs, whitespace around colons and inside Via's protocol, a Via with comment-like spacing.
    text = """INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 0
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

"""
    m = parse_message(msg(text))
    assert isinstance(m, Request)
    assert m.cseq.seq == 9 and m.cseq.method == "INVITE"
    assert m.to.tag == "1918181833n"
    assert m.from_.display_name == 'J Rosenberg \\"'
    assert m.from_.tag == "98asjd8"
    vias = m.vias
    assert [v.transport for v in vias] == ["UDP", "TCP", "UDP"]
    assert vias[1].host == "spindle.example.com" and vias[1].branch == "z9hG4bK9ikj8"
    assert vias[2].branch == "z9hG4bK30239"
    contact = parse_name_addr(m.headers.get_all("Contact")[0])
    assert contact.display_name == 'Quoted string ""'
    assert contact.params["q"] == "0.33"
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("Subject") == ""


def test_intmeth_unusual_method_token() -> None:
    text = BASE.replace("INVITE sip:bob", "!interesting-Method0123456789_*+`.%indeed'~ sip:bob").replace(
        "CSeq: 314159 INVITE", "CSeq: 314159 !interesting-Method0123456789_*+`.%indeed'~"
    )
    m = parse_message(msg(text))
    assert isinstance(m, Request) and m.method.startswith("!interesting")


def test_esc01_escaped_user_and_tel_uri() -> None:
    text = BASE.replace("sip:bob@example.com SIP", "sip:sips%3Auser%40example.com@example.net SIP")
    m = parse_message(msg(text))
    assert isinstance(m, Request) and isinstance(m.uri, SipUri)
    assert m.uri.user_decoded == "sips:user@example.com"
    assert m.uri.host == "example.net"


def test_escnull_percent_zero_in_user() -> None:
    uri = parse_uri("sip:null-%00-null@example.com")
    assert isinstance(uri, SipUri) and uri.user_decoded == "null-\x00-null"


def test_lwsdisp_display_name_without_space_before_bracket() -> None:
    na = parse_name_addr("caller<sip:caller@example.com>;tag=323")
    assert na.display_name == "caller" and na.tag == "323"


def test_long_values_survive() -> None:
    long_tag = "a" * 2000
    text = BASE.replace("tag=1928301774", f"tag={long_tag}")
    m = parse_message(msg(text))
    assert m.from_.tag == long_tag


def test_semiuri_semicolon_in_user_part() -> None:
    na = parse_name_addr("<sip:user;par=u%40example.net@example.com>")
    assert isinstance(na.uri, SipUri)
    assert na.uri.host == "example.com"
    assert na.uri.user == "user;par=u%40example.net"


def test_transports_unknown_transport_kept() -> None:
    two_vias = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9,SIP/2.0/SCTP a.example.com"
    text = BASE.replace("SIP/2.0/UDP 192.0.2.1:5060", two_vias)
    m = parse_message(msg(text.replace(";branch=z9hG4bK776asdhds", "", 1)))
    assert [v.transport for v in m.vias] == ["UDP", "SCTP"]


def test_unreason_and_noreason() -> None:
    head = """SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 0

"""
    m = parse_message(msg(head))
    assert isinstance(m, Response) and m.status == 200 and "простое" in m.reason
    m2 = parse_message(msg(head.replace("200 = 2**3 * 5**2 но сто девяносто девять - простое", "200 ")))
    assert isinstance(m2, Response) and m2.reason == ""
    m3 = parse_message(msg(head.replace("200 = 2**3 * 5**2 но сто девяносто девять - простое", "200")))
    assert isinstance(m3, Response) and m3.status == 200


def test_multipart_body_is_framed_by_content_length() -> None:
    body = "--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--b--\r\n"
    framing = f"Content-Type: multipart/mixed;boundary=b\nContent-Length: {len(body)}"
    text = BASE.replace("Content-Length: 0", framing)
    m = parse_message(msg(text).replace(b"\r\n\r\n", b"\r\n\r\n" + body.encode(), 1) + b"trailing")
    assert m.body == body.encode()


def test_compact_and_repeated_headers_are_equivalent() -> None:
    text = BASE.replace("Contact: <sip:alice@192.0.2.1>", "m: <sip:a@h1>, <sip:b@h2>\nContact: <sip:c@h3>")
    m = parse_message(msg(text))
    assert len(m.headers.get_all("Contact")) == 3


def test_ipv6_references() -> None:
    uri = parse_uri("sip:[2001:db8::10]:5070;transport=tcp")
    assert isinstance(uri, SipUri) and uri.host == "2001:db8::10" and uri.port == 5070
    assert uri.transport == "TCP"
    assert str(uri) == "sip:[2001:db8::10]:5070;transport=tcp"
    with pytest.raises(SipParseError):
        parse_uri("sip:[2001:db8::10:5070")
    with pytest.raises(SipParseError):
        parse_uri("sip:[not-an-ip]")


def test_tel_and_other_schemes() -> None:
    tel = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert isinstance(tel, TelUri) and tel.number == "+1-201-555-0123"
    assert isinstance(parse_uri("mailto:a@b"), AbsoluteUri)


# ---- invalid messages (RFC 4475 §3.1.2): each must be rejected with the right status -----------------------


@pytest.mark.parametrize(
    ("old", "new", "status"),
    [
        ("Content-Length: 0", "Content-Length: 9999", 400),  # clerr: body shorter than declared
        ("Content-Length: 0", "Content-Length: -999", 400),  # ncl: negative length
        ("Content-Length: 0", "Content-Length: 99999999999999999999", 400),  # scalarlg
        ("CSeq: 314159 INVITE", "CSeq: 36893488147419103232 INVITE", 400),  # scalar02: CSeq overflow
        ("Max-Forwards: 70", "Max-Forwards: 300000000000", 400),  # scalarlg Max-Forwards
        ("CSeq: 314159 INVITE", "CSeq: 314159 ACK", 400),  # mismatch01: CSeq method differs
        ("SIP/2.0\nVia", "SIP/7.0\nVia", 505),  # badvers
        ("INVITE sip:bob@example.com", "INVITE name:bob@example.com", 416),  # unksm: unknown URI scheme
        ("From: Alice <sip:alice@example.org>", 'From: "Alice <sip:alice@example.org>', 400),  # quotbal
        ("To: Bob <sip:bob@example.com>", "To: Bob <sip:bob@example.com", 400),  # badaspec: unterminated
        ("Call-ID: a84b4c76e66710@pc33.example.org\n", "", 400),  # missing required header
        ("Content-Length: 0", "Content-Length: 0\nl: 0", 400),  # mcl01: Content-Length twice
        ("To: Bob <sip:bob@example.com>", "To: Bob <sip:bob@example.com>\nt: <sip:other@example.com>", 400),  # multi01
        ("Call-ID: a84b4c76e66710@pc33.example.org", "Call-ID: a\ni: b", 400),  # two Call-IDs
    ],
)
def test_invalid_messages(old: str, new: str, status: int) -> None:
    text = BASE.replace(old, new)
    assert text != BASE
    with pytest.raises(SipParseError) as info:
        parse_message(msg(text))
    assert info.value.status == status


def test_invalid_with_request_keeps_headers_for_400() -> None:
    with pytest.raises(MessageError) as info:
        parse_message(msg(BASE.replace("CSeq: 314159 INVITE", "CSeq: 314159 ACK")))
    assert info.value.request is not None
    response = response_to(info.value.request, 400, to_tag="x")
    assert response.to.tag == "x"


@pytest.mark.parametrize(
    "first_line",
    [
        "INVITE  sip:bob@example.com SIP/2.0",  # lwsruri: extra space
        "INVITE <sip:bob@example.com> SIP/2.0",  # ltgtruri: brackets in Request-URI
        "INVITE sip:bob@example.com SIP/2.0 ",  # trws: trailing space
        "INVITE sip:user@example.com; lr SIP/2.0",  # escruri / lws in uri
        " INVITE sip:bob@example.com SIP/2.0",  # lwsstart
    ],
)
def test_bad_request_lines(first_line: str) -> None:
    with pytest.raises(SipParseError):
        parse_message(msg(BASE.replace("INVITE sip:bob@example.com SIP/2.0", first_line)))


def test_header_limits() -> None:
    many = "".join(f"X-H{i}: v\n" for i in range(400))
    with pytest.raises(SipParseError) as info:
        parse_message(msg(BASE.replace("Content-Length: 0", many + "Content-Length: 0")))
    assert info.value.status == 413
    with pytest.raises(SipParseError) as info:
        parse_message(b"X" * 70000)
    assert info.value.status == 513


def test_stream_framer_splits_and_waits() -> None:
    one = msg(BASE)
    body_msg = msg(BASE.replace("Content-Length: 0", "Content-Length: 4")) + b"abcd"
    framer = StreamFramer()
    data = b"\r\n\r\n" + one + body_msg
    assert framer.feed(data[:30]) == []
    out = framer.feed(data[30:-2])
    assert out == [one]
    assert framer.feed(data[-2:]) == [body_msg]
    assert parse_message(body_msg, stream=True).body == b"abcd"


def test_stream_framer_byte_by_byte_gives_the_same_messages() -> None:
    """A peer dripping a stream a byte at a time (keep-alives included) gets the same messages as one sending
    it at once; bench/bench_tcp_drip.py measures that this costs a constant amount per byte."""
    big = msg(BASE.replace("Content-Length: 0", "Content-Length: 60000")) + b"x" * 60000
    data = b"\r\n" + msg(BASE) + b"\r\n\r\n" + big + b"\r\n" + msg(BASE)
    framer = StreamFramer()
    out = [m for i in range(len(data)) for m in framer.feed(data[i : i + 1])]
    assert out == StreamFramer().feed(data) == [msg(BASE), big, msg(BASE)]
    assert not framer.pending


def test_stream_requires_content_length() -> None:
    framer = StreamFramer()
    with pytest.raises(SipParseError):
        framer.feed(msg(BASE.replace("Content-Length: 0\n", "")))


def test_inv2543_request_without_magic_cookie_parses() -> None:
    # RFC 2543 style: no branch at all; the transaction layer falls back to dialog identifiers.
    m = parse_message(msg(BASE.replace(";branch=z9hG4bK776asdhds", "")))
    assert isinstance(m, Request) and m.top_via.branch is None


def test_unknown_scheme_in_to_is_accepted_but_not_in_request_uri() -> None:
    m = parse_message(msg(BASE.replace("To: Bob <sip:bob@example.com>", "To: <isbn:2983792873>")))
    assert isinstance(m.to.uri, AbsoluteUri)
