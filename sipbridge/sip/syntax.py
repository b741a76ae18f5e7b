"""Low-level lexical helpers shared by URI, header and message parsing (RFC 3261 §25).

They only split and unquote; they know nothing about which header they serve, so the typed parsers stay small.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from .errors import SipParseError

TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")


_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")


def is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


def split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is not inside a quoted string or an ``<...>`` URI."""
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts: list[str] = []
    start = 0
    quoted = False
    angle = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "<":
            angle = True
        elif c == ">":
            angle = False
        elif c == sep and not angle:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quoted:
        raise SipParseError("unterminated quoted string")
    parts.append(text[start:])
    return parts


def unquote_string(text: str) -> str:
    """Remove the quotes and backslash escapes of a quoted-string; a token is returned unchanged."""
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        body = text[1:-1]
        out: list[str] = []
        i = 0
        while i < len(body):
            if body[i] == "\\" and i + 1 < len(body):
                i += 1
            out.append(body[i])
            i += 1
        return "".join(out)
    if text.startswith('"'):
        raise SipParseError("unterminated quoted string")
    return text


def quote_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_params(text: str) -> dict[str, str | None]:
    """Parse ``;name=value;flag`` (the leading ``;`` optional). Names are lower-cased, values unquoted."""
    params: dict[str, str | None] = {}
    for item in split_outside_quotes(text, ";"):
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        name = name.strip().lower()
        if not is_token(name):
            raise SipParseError(f"bad parameter name {name!r}")
        params[name] = unquote_string(value) if eq else None
    return params


def format_params(params: dict[str, str | None]) -> str:
    out = []
    for name, value in params.items():
        if value is None:
            out.append(f";{name}")
        elif value == "" or is_token(value) or _is_host_like(value):
            out.append(f";{name}={value}")
        else:
            out.append(f";{name}={quote_string(value)}")
    return "".join(out)


def _is_host_like(value: str) -> bool:
    return all(c in TOKEN_CHARS or c in "[]:" for c in value)


def percent_decode(text: str) -> str:
    if "%" not in text:
        return text
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError as exc:
        raise SipParseError("bad percent-escape") from exc


def is_digits(text: str | bytes) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts e.g. superscripts, which ``int()`` then rejects."""
    return bool(text) and text.isascii() and text.isdigit()


def bounded_int(text: str, maximum: int) -> int | None:
    """A decimal number read from the wire, or None when it is not one or exceeds ``maximum``.

    Every number taken from a message goes through here: the length is checked before ``int()`` sees the text,
    so a 5 000-digit string is refused like any other bad value (``int()`` itself raises past 4 300 digits).
    """
    if not is_digits(text):
        return None
    significant = text.lstrip("0") or "0"  # leading zeros are allowed (RFC 4475 writes 0068)
    if len(significant) > len(str(maximum)):
        return None
    value = int(significant)
    return value if value <= maximum else None
