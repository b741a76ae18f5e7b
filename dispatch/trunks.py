"""Which inbound trunk admits a call.

A trunk admits a call when the caller is in ``allowed_numbers`` (or it is empty), the source address
or From host passes ``allowed_addresses`` (or it is empty) and the called number is in ``numbers``
(or it is empty: a catch-all trunk). Among admitting trunks the most specific wins: one listing the
called number beats a catch-all, and then one listing the caller in ``allowed_numbers`` beats one
that accepts any caller (the same distinctions the conflict check in dispatch.validate makes, so a
set of trunks that passed it never ties). A tie is an error, as in livekit-server.

Digest authentication is required when the chosen trunk has ``auth_username`` or ``auth_password``.
(LiveKit asks only when both are set, so a trunk with a user name and no password admits anyone;
here it asks for that user name with an empty password.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from livekit.protocol.sip import SIPInboundTrunkInfo

from dispatch.addresses import address_allowed
from dispatch.call import InviteFacts
from dispatch.index import TrunkIndex
from dispatch.numbers import number_in


class TrunkVerdict(StrEnum):
    ACCEPT = "accept"
    """A trunk admits the call; if ``credentials`` is set the digest response must be checked with it."""
    AUTH_REQUIRED = "auth_required"
    """A trunk admits the call but wants digest credentials the INVITE did not carry: challenge it."""
    AUTH_FAILED = "auth_failed"
    """The INVITE carried credentials for a user name the trunk does not know."""
    NO_TRUNK = "no_trunk"
    """Inbound trunks exist and none admits the call: reject it."""
    NO_TRUNKS_DEFINED = "no_trunks_defined"
    """No inbound trunk exists at all: only catch-all dispatch rules may take the call."""
    AMBIGUOUS = "ambiguous"
    """Two trunks admit the call equally well: a configuration error."""


SIP_STATUS = {
    TrunkVerdict.ACCEPT: 200,
    TrunkVerdict.AUTH_REQUIRED: 401,
    TrunkVerdict.AUTH_FAILED: 403,
    TrunkVerdict.NO_TRUNK: 404,
    TrunkVerdict.NO_TRUNKS_DEFINED: 200,
    TrunkVerdict.AMBIGUOUS: 503,
}
"""SIP status for each verdict: the final answer for refusals, 200 where the call may go on."""


@dataclass(frozen=True)
class TrunkCredentials:
    """What the SIP layer needs to challenge for and verify digest authentication."""

    username: str
    password: str
    realm: str


@dataclass(frozen=True)
class TrunkConsideration:
    """How one trunk fared against the call, for the simulator and for logs."""

    trunk_id: str
    name: str
    admitted: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class TrunkMatch:
    verdict: TrunkVerdict
    trunk: SIPInboundTrunkInfo | None
    reason: str
    credentials: TrunkCredentials | None
    considered: tuple[TrunkConsideration, ...]

    @property
    def sip_status(self) -> int:
        return SIP_STATUS[self.verdict]


def requires_auth(trunk: SIPInboundTrunkInfo) -> bool:
    """Whether calls through ``trunk`` must authenticate with digest credentials."""
    return bool(trunk.auth_username or trunk.auth_password)


def _specificity(trunk: SIPInboundTrunkInfo) -> tuple[bool, bool]:
    return bool(trunk.numbers), bool(trunk.allowed_numbers)


def _consider(trunk: SIPInboundTrunkInfo, call: InviteFacts) -> TrunkConsideration:
    reasons = []
    if trunk.allowed_numbers and not number_in(call.calling_number, trunk.allowed_numbers):
        allowed = list(trunk.allowed_numbers)
        reasons.append(f"caller {call.calling_number!r} is not in allowed_numbers {allowed}")
    registered = bool(call.registered_trunk_id)  # the registrar relayed it: its address says nothing of the caller
    if not registered and not address_allowed(trunk.allowed_addresses, call.source_ip, call.from_host):
        reasons.append(
            f"source {call.source_ip or '<unknown>'} (From host {call.from_host or '<none>'!s}) "
            f"is not in allowed_addresses {list(trunk.allowed_addresses)}"
        )
    if trunk.numbers and not number_in(call.called_number, trunk.numbers):
        reasons.append(f"called number {call.called_number!r} is not in numbers {list(trunk.numbers)}")
    admitted = not reasons
    if admitted:
        reasons.append(
            f"admits: called number in numbers {list(trunk.numbers)}"
            if trunk.numbers
            else "admits: catch-all trunk (no numbers)"
        )
    return TrunkConsideration(trunk.sip_trunk_id, trunk.name, admitted, tuple(reasons))


def match_trunk(trunks: Sequence[SIPInboundTrunkInfo] | TrunkIndex, call: InviteFacts) -> TrunkMatch:
    """Decide which of ``trunks`` (every inbound trunk, legacy ones included) takes ``call``.

    Given a `TrunkIndex`, only its candidates for the call are considered (the decision is the same; the
    explanation lists fewer trunks): that is the call path. Given a list, every trunk is (the simulator)."""
    if call.registered_trunk_id:
        return _match_registered(trunks, call)
    if not len(trunks):
        return TrunkMatch(TrunkVerdict.NO_TRUNKS_DEFINED, None, "no inbound trunks are configured", None, ())
    pool = trunks.candidates(call) if isinstance(trunks, TrunkIndex) else trunks
    considered = tuple(_consider(trunk, call) for trunk in pool)
    admitting = [t for t, c in zip(pool, considered, strict=True) if c.admitted]
    if not admitting:
        return TrunkMatch(
            TrunkVerdict.NO_TRUNK,
            None,
            f"no inbound trunk admits the call to {call.called_number!r}",
            None,
            considered,
        )
    best_rank = max(_specificity(t) for t in admitting)
    best = [t for t in admitting if _specificity(t) == best_rank]
    if len(best) > 1:
        ids = ", ".join(repr(t.sip_trunk_id) for t in best)
        return TrunkMatch(
            TrunkVerdict.AMBIGUOUS,
            None,
            f"inbound trunks {ids} admit the call to {call.called_number!r} equally well",
            None,
            considered,
        )
    trunk = best[0]
    return _authenticate(trunk, call, considered)


def _match_registered(trunks: Sequence[SIPInboundTrunkInfo] | TrunkIndex, call: InviteFacts) -> TrunkMatch:
    """A call sent over a registration: the trunk the registration names, and no other, may take it."""
    wanted = call.registered_trunk_id
    trunk = trunks.get(wanted) if isinstance(trunks, TrunkIndex) else next(
        (t for t in trunks if t.sip_trunk_id == wanted), None
    )  # fmt: skip
    if trunk is None:
        reason = f"the registration's trunk {wanted!r} does not exist"
        return TrunkMatch(TrunkVerdict.NO_TRUNK, None, reason, None, ())
    considered = (_consider(trunk, call),)
    if not considered[0].admitted:
        reason = f"the registration's trunk {wanted!r} does not admit the call to {call.called_number!r}"
        return TrunkMatch(TrunkVerdict.NO_TRUNK, None, reason, None, considered)
    return _authenticate(trunk, call, considered)


def _authenticate(
    trunk: SIPInboundTrunkInfo, call: InviteFacts, considered: tuple[TrunkConsideration, ...]
) -> TrunkMatch:
    if not requires_auth(trunk):
        return TrunkMatch(TrunkVerdict.ACCEPT, trunk, f"trunk {trunk.sip_trunk_id!r}", None, considered)
    credentials = TrunkCredentials(trunk.auth_username, trunk.auth_password, trunk.auth_realm)
    if call.auth_username is None:
        return TrunkMatch(
            TrunkVerdict.AUTH_REQUIRED,
            trunk,
            f"trunk {trunk.sip_trunk_id!r} requires digest authentication",
            credentials,
            considered,
        )
    if call.auth_username != trunk.auth_username:
        return TrunkMatch(
            TrunkVerdict.AUTH_FAILED,
            trunk,
            f"trunk {trunk.sip_trunk_id!r} does not know user {call.auth_username!r}",
            None,
            considered,
        )
    return TrunkMatch(
        TrunkVerdict.ACCEPT,
        trunk,
        f"trunk {trunk.sip_trunk_id!r} (digest response still to verify)",
        credentials,
        considered,
    )
