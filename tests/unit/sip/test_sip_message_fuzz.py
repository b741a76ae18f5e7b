"""Hypothesis fuzzing: whatever bytes arrive, the parser either returns a message or raises SipParseError."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from sipbridge.sip.errors import SipParseError
from sipbridge.sip.message import StreamFramer, parse_message
from sipbridge.sip.uri import parse_name_addr, parse_uri

SEED = (
    b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n"
    b'To: <sip:bob@example.com>\r\nFrom: "A" <sip:a@b>;tag=1\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n'
    b"Content-Length: 3\r\n\r\nabc"
)

ALPHABET = st.sampled_from(list(b'\r\n :;,<>"@[]=/\\%SIPV0123456789abcTtagbranchINVITEsip.-'))


def _parse_safely(data: bytes) -> None:
    try:
        message = parse_message(data)
    except SipParseError:
        return
    # Whatever parsed must serialise and parse back.
    parse_message(message.to_bytes())


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    _parse_safely(data)


@settings(max_examples=600, deadline=None)
@given(st.integers(0, len(SEED)), st.integers(0, 40), st.lists(ALPHABET, max_size=20))
def test_mutated_invite(pos: int, cut: int, insert: list[int]) -> None:
    _parse_safely(SEED[:pos] + bytes(insert) + SEED[pos + cut :])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_uri_and_name_addr(text: str) -> None:
    for parse in (parse_uri, parse_name_addr):
        with contextlib.suppress(SipParseError):
            parse(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=6))
def test_stream_framer(chunks: list[bytes]) -> None:
    framer = StreamFramer()
    try:
        for chunk in chunks:
            for raw in framer.feed(chunk):
                _parse_safely(raw)
    except SipParseError:
        pass
