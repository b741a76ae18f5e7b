"""Header storage with compact-form and list-splitting rules, plus the typed headers the stack routes on."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import SipParseError
from .syntax import bounded_int, format_params, is_token, parse_params, split_outside_quotes
from .uri import format_host, parse_host_port

COMPACT_FORMS = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "r": "Refer-To",
    "b": "Referred-By",
    "o": "Event",
    "u": "Allow-Events",
    "x": "Session-Expires",
}

_CANONICAL = {
    name.lower(): name
    for name in (
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Allow",
        "Allow-Events",
        "Authorization",
        "Call-ID",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Length",
        "Content-Type",
        "CSeq",
        "Date",
        "Event",
        "Expires",
        "From",
        "Max-Forwards",
        "Min-SE",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "Record-Route",
        "Refer-To",
        "Referred-By",
        "Require",
        "Retry-After",
        "Route",
        "Server",
        "Session-Expires",
        "Subject",
        "Subscription-State",
        "Supported",
        "Timestamp",
        "To",
        "Unsupported",
        "User-Agent",
        "Via",
        "Warning",
        "WWW-Authenticate",
        "Reason",
        "Min-Expires",
    )
}

# Routing headers are stored one element per entry, because the stack edits them element by element.
SPLIT_HEADERS = frozenset(n.lower() for n in ("Via", "Route", "Record-Route", "Contact"))
# Headers whose grammar is a comma-separated list: repeated and comma forms are equivalent (RFC 3261 §7.3.1).
LIST_HEADERS = frozenset(
    n.lower()
    for n in (
        "Via",
        "Route",
        "Record-Route",
        "Contact",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Allow-Events",
        "Content-Encoding",
    )
)


@functools.lru_cache(maxsize=1024)
def canonical_name(name: str) -> str:
    lower = name.lower()
    if lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    return _CANONICAL.get(lower, name)


def _key(name: str) -> str:
    return canonical_name(name).lower()


class Headers:
    """Ordered header fields. Names are stored canonical; routing headers hold one value per element."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str, str]] = []  # (lookup key, canonical name, value)
        for name, value in items or ():
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        name = canonical_name(name)
        key = name.lower()
        if key in SPLIT_HEADERS and "," in value:
            self._items.extend((key, name, v.strip()) for v in split_outside_quotes(value, ",") if v.strip())
        else:
            self._items.append((key, name, value))

    def prepend(self, name: str, value: str) -> None:
        name = canonical_name(name)
        self._items.insert(0, (name.lower(), name, value))

    def set(self, name: str, value: str) -> None:
        self.remove(name)
        self.add(name, value)

    def replace_first(self, name: str, value: str) -> None:
        key = _key(name)
        for i, (k, n, _) in enumerate(self._items):
            if k == key:
                self._items[i] = (k, n, value)
                return
        self.add(name, value)

    def remove(self, name: str) -> None:
        key = _key(name)
        self._items = [item for item in self._items if item[0] != key]

    def get(self, name: str) -> str | None:
        key = _key(name)
        for k, _, v in self._items:
            if k == key:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value; list headers come back one element each, whether sent repeated or comma-joined."""
        key = _key(name)
        values = [v for k, _, v in self._items if k == key]
        if key in LIST_HEADERS and key not in SPLIT_HEADERS:
            return [e.strip() for v in values for e in split_outside_quotes(v, ",") if e.strip()]
        return values

    def first_repeated(self, names: frozenset[str]) -> str | None:
        """The first of ``names`` (canonical) that occurs more than once, in one pass."""
        seen: set[str] = set()
        for _, name, _ in self._items:
            if name in names:
                if name in seen:
                    return name
                seen.add(name)
        return None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((n, v) for _, n, v in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def copy(self) -> Headers:
        clone = Headers()
        clone._items = list(self._items)
        return clone

    def tokens(self, name: str) -> frozenset[str]:
        """Lower-cased option tags of e.g. Supported/Require, across repeated and comma forms."""
        return frozenset(v.strip().lower() for v in self.get_all(name) if v.strip())


@dataclass
class Via:
    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {format_host(self.host)}{port}{format_params(self.params)}"


@functools.lru_cache(maxsize=4096)
def parse_via(text: str) -> Via:
    """Cached, as the top Via is read many times per message: callers copy before changing a result."""
    return _parse_via(text)


def _parse_via(text: str) -> Via:
    proto, _, rest = text.strip().partition(" ")
    parts = [p.strip() for p in proto.split("/")]
    if len(parts) != 3 or parts[0].upper() != "SIP" or not is_token(parts[2]):
        # Allow whitespace around the slashes ("SIP / 2.0 / UDP") which RFC 4475 wsinv uses.
        joined = "".join(text.split())
        if joined.upper().startswith("SIP/2.0/"):
            return _parse_via_compact(text)
        raise SipParseError(f"bad Via {text!r}")
    return _finish_via(parts[2].upper(), rest)


def _parse_via_compact(text: str) -> Via:
    rest = text.strip()
    for _ in range(2):
        slash = rest.find("/")
        rest = rest[slash + 1 :].lstrip()
    transport, _, sent_by = rest.partition(" ")
    return _finish_via(transport.strip().upper(), sent_by)


def _finish_via(transport: str, rest: str) -> Via:
    sent_by, _, params = rest.strip().partition(";")
    host, port = parse_host_port("".join(sent_by.split()))
    return Via(transport=transport, host=host, port=port, params=parse_params(params))


@dataclass(frozen=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


@functools.lru_cache(maxsize=4096)
def parse_cseq(text: str) -> CSeq:
    parts = text.split()
    seq = bounded_int(parts[0], 2**31 - 1) if len(parts) == 2 else None
    if seq is None or not is_token(parts[1]):
        raise SipParseError(f"bad CSeq {text[:40]!r}")
    return CSeq(seq, parts[1])


def parse_header_params(text: str) -> tuple[str, dict[str, str | None]]:
    """Split ``value;param=x`` headers such as Session-Expires, Event, Subscription-State, Content-Type."""
    value, _, params = text.partition(";")
    return value.strip(), parse_params(params)
