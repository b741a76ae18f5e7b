"""What the inspector needs to know of a SIP message, read without the stack's full parser.

Every message the node sends or receives passes through here, so this reads only the start line and the few
headers a trace is filed by (Call-ID, CSeq, To's tag, Content-Type, Refer-To, Replaces), with one regular
expression over the header block: a few microseconds where the full parse costs tens. Bytes that are not SIP give
None and are not traced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER = re.compile(rb"(?im)^(call-id|i|cseq|to|t|content-type|c|refer-to|r|replaces)[ \t]*:[ \t]*([^\r\n]*)")
_NAMES = {
    b"call-id": "call_id",
    b"i": "call_id",
    b"cseq": "cseq",
    b"to": "to",
    b"t": "to",
    b"content-type": "content_type",
    b"c": "content_type",
    b"refer-to": "refer_to",
    b"r": "refer_to",
    b"replaces": "replaces",
}


@dataclass(frozen=True, slots=True)
class MessageFacts:
    call_id: str
    method: str
    """The request's method, or for a response the method of its CSeq."""
    status: int
    """0 for a request."""
    reason: str
    request_uri: str
    cseq: int
    to_tag: bool
    content_type: str
    refer_to: str = ""
    """A REFER's target (transfers link the call they make to this one)."""
    to: str = ""
    replaces: str = ""
    """An INVITE's Replaces header (RFC 3891): the call it takes over."""

    @property
    def is_request(self) -> bool:
        return self.status == 0

    @property
    def label(self) -> str:
        """What a ladder arrow says: ``INVITE`` or ``200 OK``."""
        return self.method if self.is_request else f"{self.status} {self.reason}".strip()

    @property
    def starts_dialog(self) -> bool:
        """An INVITE outside any dialog: the start of a call (or its retry after a challenge)."""
        return self.is_request and self.method == "INVITE" and not self.to_tag


def scan(data: bytes) -> MessageFacts | None:
    head, _, _ = data.partition(b"\r\n\r\n")
    start, _, headers = head.partition(b"\r\n")
    first = start.decode("utf-8", "replace").split(" ", 2)
    if len(first) < 3:
        return None
    found: dict[str, str] = {}
    for match in _HEADER.finditer(headers):
        key = _NAMES[match.group(1).lower()]
        if key not in found:
            found[key] = match.group(2).strip().decode("utf-8", "replace")
    call_id = found.get("call_id", "")
    cseq_number, _, cseq_method = found.get("cseq", "").partition(" ")
    if not call_id or not cseq_number.isdigit():
        return None
    to = found.get("to", "")
    to_params = to.rpartition(">")[2] if ">" in to else to  # a tag inside <...> would be the URI's
    to_tag = ";tag=" in to_params.replace(" ", "").lower()
    if first[0].startswith("SIP/"):
        if not first[1].isdigit():
            return None
        status, reason, method, uri = int(first[1]), first[2], cseq_method.strip().upper(), ""
    else:
        if not first[2].startswith("SIP/"):
            return None
        status, reason, method, uri = 0, "", first[0].upper(), first[1]
    return MessageFacts(
        call_id, method, status, reason, uri, int(cseq_number), to_tag, found.get("content_type", ""),
        found.get("refer_to", ""), to, found.get("replaces", ""),
    )  # fmt: skip
