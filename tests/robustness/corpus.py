"""Seed messages for the mutation fuzzer: RFC 4475-style oddities and the real messages a bridge meets (phones,
carriers, PBXs: INVITEs with SDP, digest answers, re-INVITEs, INFO DTMF, REFER/NOTIFY, responses to our INVITEs).

In-dialog seeds carry ``{tag}`` where the answered call's To tag goes, so their mutants reach the call itself.
"""

from __future__ import annotations

CALLER = "192.0.2.7"
BRIDGE = "192.0.2.1"

SDP = (
    f"v=0\r\no=- 3735928559 1 IN IP4 {CALLER}\r\ns=call\r\nc=IN IP4 {CALLER}\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 9 0 8 111 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)
SRTP_SDP = (
    f"v=0\r\no=- 1 1 IN IP4 {CALLER}\r\ns=-\r\nc=IN IP4 {CALLER}\r\nt=0 0\r\n"
    "m=audio 40002 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n"
    "a=sendonly\r\n"
)


def _request(method: str, body: str = "", *, tag: str = "", cseq: int = 1, extra: str = "", ctype: str = "") -> str:
    to_tag = ";tag={tag}" if tag else ""
    head = (
        f"{method} sip:+15105550100@{BRIDGE}:5060;user=phone SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {CALLER}:5060;branch=z9hG4bK{method.lower()}{cseq};rport\r\n"
        f'Max-Forwards: 70\r\nFrom: "Caller" <sip:+13105550100@{CALLER}>;tag=c0ffee\r\n'
        f"To: <sip:+15105550100@{BRIDGE}>{to_tag}\r\nCall-ID: fuzz-call-1@{CALLER}\r\nCSeq: {cseq} {method}\r\n"
        f"Contact: <sip:+13105550100@{CALLER}:5060>\r\nUser-Agent: phone/1.0\r\n{extra}"
    )
    if body:
        head += f"Content-Type: {ctype or 'application/sdp'}\r\n"
    return f"{head}Content-Length: {len(body.encode())}\r\n\r\n{body}"


INVITES = [
    _request(
        "INVITE", SDP, extra="Supported: timer, replaces\r\nSession-Expires: 1800;refresher=uac\r\nMin-SE: 90\r\n"
    ),
    _request("INVITE", SRTP_SDP, extra="Allow: INVITE, ACK, BYE, CANCEL, INFO, REFER, NOTIFY\r\n"),
    _request("INVITE", extra="Privacy: id\r\nP-Asserted-Identity: <sip:+13105550199@carrier.example>\r\n"),  # late SDP
    _request(
        "INVITE",
        SDP,
        cseq=2,
        extra=(
            'Authorization: Digest username="user", realm="sipbridge", nonce="1764770000000.abcdef.0123456789", '
            'uri="sip:+15105550100@192.0.2.1", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, '
            'qop=auth, nc=00000001, cnonce="0a4f113b"\r\n'
        ),
    ),
    _request(
        "INVITE",
        SDP,
        extra=(
            "Record-Route: <sip:proxy1.example;lr>, <sip:198.51.100.2;lr;transport=tcp>\r\n"
            "X-Customer-Id: 42\r\nDiversion: <sip:+15105550111@carrier.example>;reason=unconditional\r\n"
        ),
    ),
    _request(
        "INVITE",
        "--b1\r\nContent-Type: application/sdp\r\n\r\n" + SDP + "--b1\r\nContent-Type: application/isup\r\n\r\n"
        "\x01\x00\x49\x00\x00\r\n--b1--\r\n",
        ctype="multipart/mixed;boundary=b1",
    ),
]
IN_DIALOG = [
    _request("ACK", tag="{tag}"),
    _request("BYE", tag="{tag}", cseq=2, extra='Reason: Q.850;cause=16;text="Normal call clearing"\r\n'),
    _request("INFO", "Signal=5\r\nDuration=160\r\n", tag="{tag}", cseq=2, ctype="application/dtmf-relay"),
    _request("INFO", "11", tag="{tag}", cseq=3, ctype="application/dtmf"),
    _request("INVITE", SDP.replace("a=sendrecv", "a=sendonly"), tag="{tag}", cseq=2, extra="Session-Expires: 90\r\n"),
    _request("UPDATE", SDP.replace("a=sendrecv", "a=inactive"), tag="{tag}", cseq=4),
    _request("REFER", tag="{tag}", cseq=5, extra="Refer-To: <sip:+15105550123@carrier.example>\r\n"),
    _request(
        "NOTIFY",
        "SIP/2.0 200 OK\r\n",
        tag="{tag}",
        cseq=6,
        extra="Event: refer\r\nSubscription-State: terminated;reason=noresource\r\n",
        ctype="message/sipfrag;version=2.0",
    ),
]
OUT_OF_DIALOG = [
    _request("OPTIONS"),
    _request("CANCEL"),
    _request("REGISTER", extra="Expires: 3600\r\n"),
    _request("MESSAGE", "hello", ctype="text/plain"),
    # RFC 4475 flavours: folding, compact forms, odd whitespace, escaped URIs, unknown header values
    "\r\n".join(
        [
            "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0",
            "TO :",
            " sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
            'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>',
            "  ;",
            "  tag = 98asjd8",
            "MaX-fOrWaRdS: 0068",
            "Call-ID: wsinv.ndaksdj@192.0.2.1",
            "Content-Length   : 0",
            "cseq: 0009",
            "  INVITE",
            "Via  : SIP  /   2.0",
            "  /UDP",
            "    192.0.2.2;branch=390skdjuw",
            "s :",
            "NewFangledHeader:   newfangled value",
            " continued newfangled value",
            "UnknownHeaderWithUnusualValue: ;;,,;;,;",
            "v:  SIP  / 2.0  / TCP     spindle.example.com   ;",
            "  branch  =   z9hG4bK9ikj8  ,",
            " SIP  /    2.0   / UDP  192.168.255.111   ; branch=",
            " z9hG4bK30239",
            'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =',
            "      newvalue ;",
            "  secondparam ; q = 0.33",
            "",
            "",
        ]
    ),
    "\r\n".join(
        [
            "INVITE sips:user@example.com SIP/2.0",
            "To: sip:%75se%72@example.com",
            "From: <sip:I%20have%20spaces@example.net>;tag=938",
            "Max-Forwards: 87",
            "i: esc01.239409asdfakjkn23onasd0-3234",
            "CSeq: 234234 INVITE",
            "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw",
            "C: application/sdp",
            "Contact:",
            "  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>",
            "l: 0",
            "",
            "",
        ]
    ),
    "\r\n".join(
        [
            "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0",
            "To: sip:j_user@example.com",
            "From: sip:caller@example.org;tag=33242",
            "Max-Forwards: 3",
            "Call-ID: semiuri.0ha0isndaksdj",
            "CSeq: 8 OPTIONS",
            "Accept: application/sdp, application/pkcs7-mime,",
            "        multipart/mixed, multipart/signed,",
            "        message/sip, message/sipfrag",
            "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw",
            "l: 0",
            "",
            "",
        ]
    ),
]
RESPONSES = [
    "SIP/2.0 180 Ringing\r\nVia: {via}\r\nFrom: {frm}\r\nTo: <sip:bob@192.0.2.7>;tag=t9\r\nCall-ID: {call_id}\r\n"
    "CSeq: 1 INVITE\r\nContact: <sip:bob@192.0.2.7>\r\nContent-Length: 0\r\n\r\n",
    "SIP/2.0 183 Session Progress\r\nVia: {via}\r\nFrom: {frm}\r\nTo: <sip:bob@192.0.2.7>;tag=t9\r\n"
    "Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@192.0.2.7>\r\nRequire: 100rel\r\nRSeq: 1\r\n"
    f"Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n{SDP}",
    "SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: {frm}\r\nTo: <sip:bob@192.0.2.7>;tag=t9\r\nCall-ID: {call_id}\r\n"
    "CSeq: 1 INVITE\r\nContact: <sip:bob@192.0.2.7>\r\nRecord-Route: <sip:p.example;lr>\r\n"
    f"Session-Expires: 90;refresher=uac\r\nContent-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n{SDP}",
    "SIP/2.0 401 Unauthorized\r\nVia: {via}\r\nFrom: {frm}\r\nTo: <sip:bob@192.0.2.7>;tag=t9\r\nCall-ID: {call_id}\r\n"
    'CSeq: 1 INVITE\r\nWWW-Authenticate: Digest realm="carrier", nonce="abc", algorithm=MD5, qop="auth"\r\n'
    "Content-Length: 0\r\n\r\n",
    "SIP/2.0 422 Session Interval Too Small\r\nVia: {via}\r\nFrom: {frm}\r\nTo: <sip:bob@192.0.2.7>;tag=t9\r\n"
    "Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMin-SE: 1800\r\nContent-Length: 0\r\n\r\n",
]
