"""What dispatch needs to know of an INVITE (`dispatch.call.InviteFacts`), read from the parsed request.

Pure, so that the robustness fuzzer drives it with hostile INVITEs.
"""

from __future__ import annotations

from dispatch.call import InviteFacts
from sipbridge.sip import SipParseError
from sipbridge.sip.auth import parse_digest
from sipbridge.sip.message import Request
from sipbridge.sip.uri import SipUri, TelUri, Uri


def invite_facts(invite: Request, source_host: str, lk_call_id: str, registered_trunk_id: str = "") -> InviteFacts:
    """``registered_trunk_id``: the trunk named by the registration of ours the INVITE came over."""
    to_uri = invite.to.uri
    return InviteFacts(
        called_number=uri_user(to_uri) or uri_user(invite.uri),
        calling_number=uri_user(invite.from_.uri),
        source_ip=source_host,
        from_host=uri_host(invite.from_.uri),
        called_host=uri_host(to_uri),
        auth_username=_auth_username(invite),
        lk_call_id=lk_call_id,
        sip_call_id=invite.call_id,
        headers=list(invite.headers),
        registered_trunk_id=registered_trunk_id,
    )


def uri_user(uri: Uri) -> str:
    """The number or user a URI names ("" for neither)."""
    if isinstance(uri, SipUri):
        return uri.user_decoded or ""
    if isinstance(uri, TelUri):
        return uri.number
    return ""


def uri_host(uri: Uri) -> str:
    return uri.host if isinstance(uri, SipUri) else ""


def _auth_username(invite: Request) -> str | None:
    header = invite.headers.get("Authorization") or invite.headers.get("Proxy-Authorization")
    if not header:
        return None
    try:
        return parse_digest(header).get("username")
    except SipParseError:
        return None  # not Digest (e.g. Basic): the trunk's check refuses it with 403
