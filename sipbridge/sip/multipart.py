"""The SDP inside a message body: plain ``application/sdp`` or one part of a ``multipart/*`` body
(SIP-I/SIP-T trunks send SDP beside an ISUP part, RFC 5621)."""

from __future__ import annotations

from .headers import parse_header_params

SDP = "application/sdp"


def find_sdp(content_type: str | None, body: bytes) -> bytes | None:
    if not body or not content_type:
        return None
    kind, params = parse_header_params(content_type)
    kind = kind.lower()
    if kind == SDP:
        return body
    boundary = params.get("boundary")
    if not kind.startswith("multipart/") or not boundary:
        return None
    delimiter = b"--" + boundary.encode()
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        part = part.removeprefix(b"\r\n").removeprefix(b"\n")
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = part.partition(b"\n\n")
        part_type = ""
        for line in head.decode("utf-8", "replace").splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() in ("content-type", "c"):
                part_type = value.split(";")[0].strip().lower()
        if part_type == SDP:  # the line break before the next delimiter belongs to the delimiter
            return content[:-2] if content.endswith(b"\r\n") else content.removesuffix(b"\n")
    return None
