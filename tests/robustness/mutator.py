"""A structure-aware mutation fuzzer for SIP: seeds from `corpus`, 1-4 mutations each, reproducible from a seed.

Mutations mix blind byte damage (flips, inserts, deletes, truncation, splices of two seeds) with SIP-shaped
damage that reaches past the parser: numbers replaced by huge, negative or non-ASCII-digit values, headers
repeated hundreds of times or dropped, separators and quotes injected, URIs and schemes swapped, non-UTF-8 and
NUL bytes, folded lines, CRLF turned into LF.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

NUMBER = re.compile(rb"\d+")
TOKEN = re.compile(rb"[A-Za-z][A-Za-z0-9.+-]*")
STRANGE_NUMBERS = [
    b"9" * 5000, b"4" * 400, b"0" * 300 + b"1", b"-1", b"4294967296", b"2147483648", b"0",
    "\u0661\u0662".encode(), b"1e9", b" 12 ", b"0x10", b"", b"\xd9\xa3",
]  # fmt: skip
STRANGE_TOKENS = [
    b"tel:+1", b"mailto:a@b", b"sips:x@[::1]", b"<>", b'"', b"\\", b";;;", b",,,", b"=", b"%", b"%zz", b"\x00",
    b"\xff\xfe", "é".encode(), b"*", b"sip:", b"[", b"::", b"Digest", b"Basic abc", b"SIP/3.0", b"\r\n ",
]  # fmt: skip
HEADER_NAMES = [
    b"Via", b"v", b"From", b"f", b"To", b"t", b"Call-ID", b"i", b"CSeq", b"Contact", b"m", b"Content-Length", b"l",
    b"Content-Type", b"c", b"Max-Forwards", b"Route", b"Record-Route", b"Session-Expires", b"x", b"Min-SE",
    b"Authorization", b"Require", b"Supported", b"k", b"Refer-To", b"r", b"Event", b"o", b"Subscription-State",
    b"Replaces", b"RSeq", b"RAck", b"Expires", b"Reason",
]  # fmt: skip

Mutation = Callable[[random.Random, bytes, Sequence[bytes]], bytes]


def _flip(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def _insert(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    i = rng.randint(0, len(data))
    junk = rng.choice([rng.randbytes(rng.randint(1, 16)), rng.choice(STRANGE_TOKENS), rng.choice(STRANGE_NUMBERS)])
    return data[:i] + junk + data[i:]


def _delete(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 64) :]


def _truncate(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    return data[: rng.randint(0, len(data))]


def _splice(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    other = rng.choice(corpus)
    return data[: rng.randint(0, len(data))] + other[rng.randint(0, len(other)) :]


def _number(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    matches = list(NUMBER.finditer(data))
    if not matches:
        return data
    m = rng.choice(matches)
    return data[: m.start()] + rng.choice(STRANGE_NUMBERS) + data[m.end() :]


def _token(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    matches = list(TOKEN.finditer(data))
    if not matches:
        return data
    m = rng.choice(matches)
    return data[: m.start()] + rng.choice(STRANGE_TOKENS) + data[m.end() :]


def _lines(data: bytes) -> tuple[list[bytes], bytes]:
    head, sep, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), (sep + body) if sep else b""


def _repeat_header(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    lines, rest = _lines(data)
    if len(lines) < 2:
        return data
    i = rng.randrange(1, len(lines))
    count = rng.choice([2, 3, 50, 300])
    return b"\r\n".join(lines[: i + 1] + [lines[i]] * (count - 1) + lines[i + 1 :]) + rest


def _drop_header(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    lines, rest = _lines(data)
    if len(lines) < 2:
        return data
    del lines[rng.randrange(1, len(lines))]
    return b"\r\n".join(lines) + rest


def _add_header(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    lines, rest = _lines(data)
    value = rng.choice([*STRANGE_TOKENS, *STRANGE_NUMBERS, b"x" * rng.choice([10, 9000]), rng.randbytes(12)])
    lines.insert(rng.randint(1, len(lines)), rng.choice(HEADER_NAMES) + b": " + value)
    return b"\r\n".join(lines) + rest


def _fold(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    spaces = [i for i, b in enumerate(data) if b == 0x20]
    if not spaces:
        return data
    i = rng.choice(spaces)
    return data[:i] + b"\r\n " + data[i + 1 :]


def _line_endings(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    return data.replace(b"\r\n", rng.choice([b"\n", b"\r", b"\r\n\r\n", b"\n\r"]), rng.randint(1, 5))


def _content_length(rng: random.Random, data: bytes, corpus: Sequence[bytes]) -> bytes:
    value = rng.choice([b"0", b"1", b"99999", b"-5", b"4294967297", b"9" * 5000, str(len(data)).encode()])
    return re.sub(rb"(?im)^(content-length|l)\s*:.*$", rb"\1: " + value, data, count=1)


MUTATIONS: list[Mutation] = [
    _flip, _insert, _delete, _truncate, _splice, _number, _number, _token, _token, _repeat_header, _drop_header,
    _add_header, _add_header, _fold, _line_endings, _content_length,
]  # fmt: skip


def mutate(rng: random.Random, corpus: Sequence[bytes]) -> bytes:
    """One mutant: a seed (sometimes left whole, to keep the deep paths warm) with 1-4 mutations."""
    data = rng.choice(corpus)
    if rng.random() < 0.05:
        return data
    for _ in range(rng.randint(1, 4)):
        data = rng.choice(MUTATIONS)(rng, data, corpus)
    return data
