"""SIP/SIPS and tel: URIs (RFC 3261 §19.1, RFC 3966) and the name-addr / addr-spec forms that carry them."""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field, replace

from .errors import SipParseError
from .syntax import bounded_int, format_params, parse_params, percent_decode, quote_string

_HOST = re.compile(r"[A-Za-z0-9\-.]+")
_USER_FORBIDDEN = frozenset(' \t\r\n<>"@')


@dataclass(frozen=True)
class SipUri:
    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    scheme: str = "sip"
    params: dict[str, str | None] = field(default_factory=dict, compare=False)
    headers: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def user_decoded(self) -> str | None:
        return None if self.user is None else percent_decode(self.user)

    @property
    def transport(self) -> str:
        value = self.params.get("transport")
        if value:
            return value.upper()
        return "TLS" if self.scheme == "sips" else "UDP"

    @property
    def host_port(self) -> str:
        return format_host(self.host) + (f":{self.port}" if self.port is not None else "")

    def __str__(self) -> str:
        out = self.scheme + ":"
        if self.user is not None:
            out += self.user
            if self.password is not None:
                out += ":" + self.password
            out += "@"
        out += self.host_port + format_params(self.params)
        if self.headers:
            out += "?" + "&".join(f"{k}={v}" for k, v in self.headers.items())
        return out


@dataclass(frozen=True)
class TelUri:
    number: str
    params: dict[str, str | None] = field(default_factory=dict, compare=False)
    scheme: str = "tel"

    def __str__(self) -> str:
        return f"tel:{self.number}{format_params(self.params)}"


@dataclass(frozen=True)
class AbsoluteUri:
    """Any other scheme (e.g. ``mailto:``): kept verbatim; SIP only needs to carry it."""

    text: str

    @property
    def scheme(self) -> str:
        return self.text.partition(":")[0].lower()

    def __str__(self) -> str:
        return self.text


Uri = SipUri | TelUri | AbsoluteUri


def format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_host_port(text: str) -> tuple[str, int | None]:
    """Parse ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; IPv6 hosts are returned without brackets."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError("unterminated IPv6 reference")
        host = text[1:end]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise SipParseError(f"bad IPv6 reference {host!r}") from exc
        rest = text[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise SipParseError("garbage after IPv6 reference")
        return host, _parse_port(rest[1:])
    host, colon, port = text.partition(":")
    if _HOST.fullmatch(host) is None:
        raise SipParseError(f"bad host {host!r}")
    return host.lower(), _parse_port(port) if colon else None


def _parse_port(text: str) -> int:
    port = bounded_int(text, 65535)
    if port is None:
        raise SipParseError(f"bad port {text[:20]!r}")
    return port


def parse_uri(text: str) -> Uri:
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme:
        raise SipParseError(f"URI without scheme: {text!r}")
    scheme = scheme.lower()
    if any(c in text for c in " \t\r\n<>"):
        raise SipParseError(f"whitespace or brackets inside URI {text!r}")
    if scheme in ("sip", "sips"):
        return _parse_sip_uri(scheme, rest)
    if scheme == "tel":
        number, _, params = rest.partition(";")
        if not number or not all(c in "0123456789+-.()*#abcdefABCDEF" for c in number):
            raise SipParseError(f"bad tel number {number!r}")
        return TelUri(number=number, params=parse_params(params))
    if not all(c.isalnum() or c in "+-." for c in scheme):
        raise SipParseError(f"bad URI scheme {scheme!r}")
    return AbsoluteUri(text)


def _parse_sip_uri(scheme: str, rest: str) -> SipUri:
    rest, _, header_text = rest.partition("?")
    user: str | None = None
    password: str | None = None
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        if any(c in _USER_FORBIDDEN for c in userinfo):
            raise SipParseError("bad userinfo")
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
        percent_decode(user)
    hostport, _, param_text = rest.partition(";")
    host, port = parse_host_port(hostport)
    headers: dict[str, str] = {}
    if header_text:
        for item in header_text.split("&"):
            name, _, value = item.partition("=")
            headers[name] = value
    return SipUri(
        scheme=scheme,
        user=user,
        password=password,
        host=host,
        port=port,
        params=parse_params(param_text),
        headers=headers,
    )


@dataclass(frozen=True)
class NameAddr:
    """A From/To/Contact/Route value: optional display name, URI, and header parameters such as ``tag``."""

    uri: Uri
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        return replace(self, params={**self.params, "tag": tag})

    def __str__(self) -> str:
        name = f"{quote_string(self.display_name)} " if self.display_name else ""
        return f"{name}<{self.uri}>{format_params(self.params)}"


@functools.lru_cache(maxsize=4096)
def parse_name_addr(text: str) -> NameAddr:
    """Cached: the same From/To/Contact values are read many times per dialog. Results are never mutated."""
    text = text.strip()
    lt = _find_unquoted(text, "<")
    if lt < 0:
        # addr-spec form: parameters after the URI belong to the header, not the URI (RFC 3261 §20.10).
        uri_text, _, params = text.partition(";")
        if "?" in uri_text or "," in uri_text:
            raise SipParseError("addr-spec with headers or commas must be bracketed")
        return NameAddr(uri=parse_uri(uri_text), params=parse_params(params))
    gt = text.find(">", lt)
    if gt < 0:
        raise SipParseError("unterminated <URI>")
    display = text[:lt].strip()
    display_name: str | None = None
    if display:
        if display.startswith('"'):
            if not display.endswith('"') or len(display) < 2:
                raise SipParseError("bad quoted display name")
            display_name = _unescape(display[1:-1])
        else:
            display_name = " ".join(display.split())
    after = text[gt + 1 :].strip()
    if after and not after.startswith(";"):
        raise SipParseError("garbage after >")
    return NameAddr(uri=parse_uri(text[lt + 1 : gt]), display_name=display_name, params=parse_params(after))


def _find_unquoted(text: str, char: str) -> int:
    quoted = False
    i = 0
    while i < len(text):
        c = text[i]
        if quoted and c == "\\":
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            return i
        i += 1
    if quoted:
        raise SipParseError("unterminated quoted string")
    return -1


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        elif text[i] == '"':
            raise SipParseError("unescaped quote in display name")
        out.append(text[i])
        i += 1
    return "".join(out)
