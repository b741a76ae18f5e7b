"""Dialog state (RFC 3261 §12): identifiers, CSeq, remote target and route set, and in-dialog request building.

The route set is what makes ACK and BYE travel back through every Record-Route proxy instead of jumping straight
to the Contact; strict routers (no ``;lr``) get the RFC 3261 §12.2.1.1 rewrite.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import SipParseError
from .message import Request, Response
from .uri import NameAddr, SipUri, Uri, parse_name_addr


def new_tag() -> str:
    return os.urandom(6).hex()


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: NameAddr  # our From value, without the tag
    remote_uri: NameAddr  # their To value, without the tag
    remote_target: Uri
    route_set: list[NameAddr] = field(default_factory=list)
    local_seq: int = 1
    remote_seq: int | None = None

    @classmethod
    def for_uas(cls, invite: Request, local_tag: str) -> Dialog:
        """We answered: routes are the INVITE's Record-Route in order."""
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=invite.from_.tag or "",
            local_uri=_without_tag(invite.to),
            remote_uri=_without_tag(invite.from_),
            remote_target=_contact_uri(invite),
            route_set=_routes(invite.headers.get_all("Record-Route")),
            local_seq=0,
            remote_seq=invite.cseq.seq,
        )

    @classmethod
    def for_uac(cls, invite: Request, response: Response) -> Dialog:
        """They answered: routes are the response's Record-Route, reversed."""
        return cls(
            call_id=invite.call_id,
            local_tag=invite.from_.tag or "",
            remote_tag=response.to.tag or "",
            local_uri=_without_tag(invite.from_),
            remote_uri=_without_tag(response.to),
            remote_target=_contact_uri(response),
            route_set=_routes(reversed(response.headers.get_all("Record-Route"))),
            local_seq=invite.cseq.seq,
        )

    def update_target(self, message: Request | Response) -> None:
        """A re-INVITE or its 2xx may move the remote target (RFC 3261 §12.2)."""
        if message.headers.get("Contact"):
            self.remote_target = _contact_uri(message)

    def accepts_remote_cseq(self, seq: int) -> bool:
        """False for an out-of-order request, which is answered 500 (RFC 3261 §12.2.2)."""
        if self.remote_seq is not None and seq < self.remote_seq:
            return False
        self.remote_seq = seq
        return True

    def next_hop(self) -> Uri:
        return self.route_set[0].uri if self.route_set else self.remote_target

    def create_request(self, method: str, *, seq: int | None = None) -> Request:
        """An in-dialog request with Route set; ACK and CANCEL pass the INVITE's sequence number."""
        if seq is None:
            self.local_seq += 1
            seq = self.local_seq
        uri = self.remote_target
        routes = list(self.route_set)
        if routes and isinstance(routes[0].uri, SipUri) and "lr" not in routes[0].uri.params:
            uri = routes[0].uri  # strict router: it gets the Request-URI, the target becomes the last Route
            routes = [*routes[1:], NameAddr(self.remote_target)]
        request = Request(method=method, uri=uri)
        for route in routes:
            request.headers.add("Route", str(route))
        request.headers.add("Max-Forwards", "70")
        request.headers.add("From", str(self.local_uri.with_tag(self.local_tag)))
        request.headers.add("To", str(self.remote_uri.with_tag(self.remote_tag)))
        request.headers.add("Call-ID", self.call_id)
        request.headers.add("CSeq", f"{seq} {method}")
        return request


def _without_tag(value: NameAddr) -> NameAddr:
    return NameAddr(value.uri, value.display_name, {k: v for k, v in value.params.items() if k != "tag"})


def _contact_uri(message: Request | Response) -> Uri:
    """The remote target: a SIP or SIPS URI (RFC 3261 §8.1.1.8), or in-dialog requests could go nowhere."""
    contact = message.headers.get("Contact")
    if not contact:
        raise SipParseError("dialog-creating message without Contact")
    return _routable(parse_name_addr(contact)).uri


def _routes(values: Iterable[str]) -> list[NameAddr]:
    return [_routable(parse_name_addr(value)) for value in values]


def _routable(name_addr: NameAddr) -> NameAddr:
    if not isinstance(name_addr.uri, SipUri):
        raise SipParseError(f"not a SIP or SIPS URI: {str(name_addr.uri)[:60]!r}")
    return name_addr
