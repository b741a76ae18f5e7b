"""Whether a decided INVITE goes on: the digest challenge and check (replays and password guessing refused), and
the refusals, with an RFC 3326 ``Reason``, or none at all for unknown callers under ``hide_inbound_port``.

What happened to an INVITE that does not go on is returned in words: the call inspector shows them as the call's
ending."""

from __future__ import annotations

import asyncio

from dispatch.decide import Decision, Verdict
from sipbridge.calls.nonces import NonceLedgerError
from sipbridge.calls.seams import CallerLeg
from sipbridge.calls.services import CallLog, CallServices
from sipbridge.sip.auth import DigestVerdict
from sipbridge.stats import CallStats, client_error, server_error

_REFUSALS = {
    Verdict.NO_TRUNK: client_error("no-trunk"),
    Verdict.NO_RULE: client_error("no-rule"),
    Verdict.AUTH_FAILED: client_error("unauthorized"),
    Verdict.WRONG_PIN: client_error("wrong-pin"),
}
"""How the metrics name a refused INVITE, by the decision's verdict (a conflict is a dispatch error)."""


async def admit(decision: Decision, leg: CallerLeg, services: CallServices, stats: CallStats, log: CallLog) -> str:
    """Challenge, refuse or let the call in: "" when it may proceed, else what was done instead (refusals are
    counted in ``stats``)."""
    hide = services.config.hide_inbound_port
    # The trunk's auth_realm (livekit-server's realm in cluster mode); empty: the stack's own.
    realm = (decision.credentials.realm if decision.credentials is not None else "") or None
    if decision.verdict is Verdict.AUTH_REQUIRED:
        leg.challenge(realm=realm)
        stats.refused(client_error("unauthorized"))
        return f"challenged: {decision.reason}"
    if decision.verdict in (Verdict.ACCEPT, Verdict.REQUEST_PIN) and decision.credentials is not None:
        creds = decision.credentials
        source, now = leg.source.host, asyncio.get_running_loop().time()
        if services.digest_failures.exhausted(source, now):
            log.info("too many failed digest answers from %s: refused without checking", source)
            stats.refused(client_error("flood"))
            return refuse(leg, 403, "too many failed authentication attempts", hide)
        try:
            verdict = await _authenticate(leg, services, log, creds.username, creds.password, realm)
        except NonceLedgerError as e:
            log.warning("cannot check the digest answer for replays: %s", e)
            leg.reject(503, reason="authentication unavailable")
            stats.refused(server_error("auth-error"))
            return "refused: authentication unavailable"
        if verdict is DigestVerdict.MISSING or verdict is DigestVerdict.STALE:
            leg.challenge(stale=verdict is DigestVerdict.STALE, realm=realm)
            stats.refused(client_error("unauthorized"))
            return f"digest answer {verdict.value}: challenged again"
        if verdict is not DigestVerdict.OK:
            log.info("digest authentication failed for user %r", creds.username)
            services.digest_failures.spend(source, now)
            stats.refused(client_error("unauthorized"))
            return refuse(leg, 403, "authentication failed", hide)
    if decision.verdict in (Verdict.ACCEPT, Verdict.REQUEST_PIN):
        if hide:
            leg.trying()  # the stack held back 100 Trying until the caller was known
        return ""
    quiet = hide and decision.verdict in (Verdict.AUTH_FAILED, Verdict.NO_TRUNK, Verdict.NO_RULE)
    stats.refused(_REFUSALS.get(decision.verdict, server_error("dispatch-error")))
    return refuse(leg, decision.sip_status, decision.reason, quiet)


async def _authenticate(
    leg: CallerLeg, services: CallServices, log: CallLog, username: str, password: str, realm: str | None
) -> DigestVerdict:
    """The digest verdict, with replays refused: an answer is good only if its nonce use is fresh. A replay
    is answered like an old nonce (a new challenge), which a caller who knows the password simply answers."""
    check = leg.authenticate(username, password, realm)
    if check.verdict is not DigestVerdict.OK or check.use is None:
        return check.verdict
    if not await services.nonces.claim(check.use):
        log.info("digest answer for user %r reuses its nonce: challenged again", username)
        return DigestVerdict.STALE
    return DigestVerdict.OK


def refuse(leg: CallerLeg, status: int, reason: str, quiet: bool) -> str:
    """Reject with ``status`` and a Reason header, or with ``quiet`` send nothing at all; says which, in words."""
    if quiet:
        leg.drop()
        return f"refused: {reason} (dropped without an answer)"
    leg.reject(status, reason=reason, headers={"Reason": reason_header(status, reason)})
    return f"refused: {reason}"


def reason_header(status: int, text: str) -> str:
    """RFC 3326 Reason header (``SIP;cause=404;text="..."``)."""
    clean = text.replace('"', "'").replace("\r", " ").replace("\n", " ")
    return f'SIP;cause={status};text="{clean}"'
