"""What the dispatch logic needs to know about an inbound INVITE."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class InviteFacts:
    """What an inbound INVITE says that dispatch decides on (the SIP leg itself is `sipbridge.sip.InboundLeg`).

    ``headers`` are the INVITE's headers in the order received (name as sent, value); they feed
    ``include_headers``, ``headers_to_attributes`` and the Twilio attributes.
    ``auth_username`` is the user name of the digest credentials the INVITE carried, or None when it
    carried none. ``registered_trunk_id`` is set when the INVITE came over one of the bridge's own
    registrations: then only that inbound trunk is considered, and its ``allowed_addresses`` does not apply
    (the source is the registrar, not the caller).
    """

    called_number: str
    calling_number: str
    source_ip: str
    from_host: str = ""
    called_host: str = ""
    auth_username: str | None = None
    lk_call_id: str = ""
    sip_call_id: str = ""
    headers: Sequence[tuple[str, str]] = ()
    registered_trunk_id: str = ""

    def header(self, name: str) -> str | None:
        """The value of the last header called ``name`` (any case), or None."""
        wanted = name.lower()
        found = None
        for key, value in self.headers:
            if key.lower() == wanted:
                found = value
        return found
