"""One outbound registration (RFC 3261 §10) as a sans-IO state machine: REGISTER, refresh, keep-alive, un-REGISTER.

Like a call it only queues outputs (``call_outputs``) for the user agent to carry out. It answers digest challenges
(again only when the nonce went stale), raises its interval to a ``423``'s Min-Expires, refreshes before the
binding expires, backs off after failures (honouring Retry-After), keeps NAT bindings open (CRLF on TCP/TLS,
OPTIONS on UDP, whose failure re-registers at once), moves its Contact to the ``received``/``rport`` address the
registrar reports, and removes its binding with ``Expires: 0``.

Calls sent to the Contact carry the registration's ``token`` in a URI parameter, so the agent can tell them from
other INVITEs (``RegistrationTable.sent_over``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from .auth import DigestCredentials
from .call_outputs import Emit, Output, SendDatagram, SendRequest, SetTimer
from .capabilities import add_capabilities
from .dialog import new_tag
from .events import RegistrationChanged
from .headers import parse_header_params
from .message import Request, Response
from .retries import digest_retry, retried
from .syntax import bounded_int
from .transaction import Address, ClientTransaction
from .uri import NameAddr, SipUri, parse_name_addr

log = logging.getLogger(__name__)

TOKEN_PARAM = "sipbridge-reg"
"""The Contact URI parameter naming the registration a call was sent over."""
MAX_BACKOFF = 300.0
"""Longest wait between two attempts of a failing registration."""
MIN_REFRESH = 5.0


class RegistrationState(StrEnum):
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILING = "failing"
    UNREGISTERING = "unregistering"
    UNREGISTERED = "unregistered"


@dataclass(frozen=True)
class RegistrationSpec:
    """What to register: ``aor`` (To/From) at ``registrar`` (the Request-URI), sent to ``destination``."""

    name: str
    registrar: SipUri
    aor: SipUri
    destination: Address
    credentials: DigestCredentials | None = None
    realm: str | None = None  # answer challenges of this realm only
    expires: int = 3600
    contact_user: str = "sipbridge"
    keepalive_interval: float = 30.0
    retry_base: float = 5.0  # first wait after a failure; doubled each time up to MAX_BACKOFF


class RegistrationEnvironment(Protocol):
    def contact(self, peer: Address, *, user: str = "sipbridge", params: str = "") -> str: ...

    def via(self, peer: Address) -> str: ...

    @property
    def user_agent(self) -> str: ...


@dataclass
class Registration:
    env: RegistrationEnvironment
    handle: int
    spec: RegistrationSpec
    token: str = field(default_factory=lambda: os.urandom(6).hex())
    state: RegistrationState = RegistrationState.REGISTERING
    last_status: int | None = None
    expires_at: float | None = None
    next_attempt: float | None = None
    deadlines: dict[str, float] = field(default_factory=dict)
    public: tuple[str, int] | None = None  # our address as the registrar saw it (NAT), when it differs
    _outputs: list[Output] = field(default_factory=list)
    _call_id: str = field(default_factory=lambda: new_tag() + new_tag() + "@sipbridge")
    _from_tag: str = field(default_factory=new_tag)
    _seq: int = 0
    _expires: int = 0
    _failures: int = 0
    _pending: Request | None = None  # our REGISTER awaiting its final response
    _stale_contact: str | None = None  # a Contact to remove with the next REGISTER (after a NAT move)

    def __post_init__(self) -> None:
        self._expires = self.spec.expires

    def take_outputs(self) -> list[Output]:
        outputs, self._outputs = self._outputs, []
        return outputs

    # ---- actions --------------------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        self._register(now, self._expires)

    def unregister(self, now: float) -> None:
        """Remove our binding (``Expires: 0``); RegistrationChanged(unregistered) follows its final response."""
        if self.state in (RegistrationState.UNREGISTERING, RegistrationState.UNREGISTERED):
            return
        self.deadlines.clear()
        self._change(RegistrationState.UNREGISTERING)
        self._register(now, 0)

    def flow_lost(self, now: float) -> None:
        """The connection to the registrar closed: register again at once over a new one."""
        if self.state is RegistrationState.REGISTERED:
            log.info("registration %s: connection to the registrar lost: registering again", self.spec.name)
            self._register(now, self._expires)

    # ---- REGISTER -------------------------------------------------------------------------------------------

    def contact(self) -> str:
        peer = self.spec.destination
        params = f";{TOKEN_PARAM}={self.token}"
        value = self.env.contact(peer, user=self.spec.contact_user, params=params)
        if self.public is not None:
            name = parse_name_addr(value)
            assert isinstance(name.uri, SipUri)
            value = str(NameAddr(replace(name.uri, host=self.public[0], port=self.public[1])))
        return value

    def _register(self, now: float, expires: int) -> None:
        self.deadlines.pop("retry", None)
        self.deadlines.pop("refresh", None)
        self._seq += 1
        request = Request(method="REGISTER", uri=self.spec.registrar)
        request.headers.add("Via", self.env.via(self.spec.destination))
        request.headers.add("Max-Forwards", "70")
        request.headers.add("From", str(NameAddr(self.spec.aor).with_tag(self._from_tag)))
        request.headers.add("To", str(NameAddr(self.spec.aor)))
        request.headers.add("Call-ID", self._call_id)
        request.headers.add("CSeq", f"{self._seq} REGISTER")
        request.headers.add("Contact", self.contact())
        if self._stale_contact is not None and expires:
            request.headers.add("Contact", f"{self._stale_contact};expires=0")
        request.headers.add("Expires", str(expires))
        add_capabilities(request, self.env.user_agent)
        self._send(request)

    def _send(self, request: Request) -> None:
        self._pending = request
        self._outputs.append(SendRequest(request, self.spec.destination))

    def on_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        status = response.status
        if status < 200 or tx.request is not self._pending:
            return  # a provisional response, or one to a keep-alive OPTIONS (any answer means we are reachable)
        if status in (401, 407) and self._may_answer(response):
            assert self.spec.credentials is not None
            headers = digest_retry(tx.request, response, self.spec.credentials)
            if headers is not None:
                self._resend(tx.request, headers)
                return
        if status == 423 and self.state is not RegistrationState.UNREGISTERING:
            wanted = _int(response.headers.get("Min-Expires"))
            if wanted is not None and wanted > self._expires:
                log.info("registration %s: 423, interval raised to %d s", self.spec.name, wanted)
                self._expires = wanted
                self._resend(tx.request, {"Expires": str(wanted)})
                return
        self._pending = None
        self.last_status = status
        if self.state is RegistrationState.UNREGISTERING:
            self._unregistered()
        elif 200 <= status < 300:
            self._registered(tx.request, response, now)
        else:
            self._failed(now, response)

    def on_timeout(self, tx: ClientTransaction, now: float, status: int) -> None:
        if tx.request.method == "OPTIONS":
            if self.state is RegistrationState.REGISTERED:
                log.info("registration %s: keep-alive unanswered (%d): registering again", self.spec.name, status)
                self._register(now, self._expires)
            return
        if tx.request is not self._pending:
            return
        self._pending = None
        self.last_status = status
        if self.state is RegistrationState.UNREGISTERING:
            self._unregistered()
        else:
            self._failed(now, None)

    def _resend(self, request: Request, headers: dict[str, str]) -> None:
        self._seq += 1
        copy = retried(request, self._seq, headers)
        copy.headers.prepend("Via", self.env.via(self.spec.destination))
        self._send(copy)

    def _may_answer(self, response: Response) -> bool:
        if self.spec.credentials is None:
            return False
        if self.spec.realm is None:
            return True
        challenge = response.headers.get("WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate")
        return f'realm="{self.spec.realm}"' in (challenge or "")

    # ---- outcomes -------------------------------------------------------------------------------------------

    def _registered(self, request: Request, response: Response, now: float) -> None:
        moved = self._nat_address(response)
        if moved is not None and moved != self.public:
            log.info("registration %s: the registrar sees us at %s:%d: moving our Contact", self.spec.name, *moved)
            self._stale_contact = self.contact()
            self.public = moved
            self._register(now, self._expires)
            return
        self._stale_contact = None
        granted = self._granted(response)
        self._failures = 0
        self.expires_at = now + granted
        refresh = now + max(MIN_REFRESH, granted / 2 if granted < 120 else granted - 60)
        self._arm("refresh", refresh)
        self.next_attempt = refresh
        if self.spec.keepalive_interval > 0:
            self._arm("keepalive", now + self.spec.keepalive_interval)
        self._change(RegistrationState.REGISTERED)

    def _granted(self, response: Response) -> int:
        """The interval the registrar gave our Contact: its ``expires`` parameter, else Expires, else ours."""
        for value in response.headers.get_all("Contact"):
            try:
                contact = parse_name_addr(value)
            except ValueError:
                continue
            if isinstance(contact.uri, SipUri) and contact.uri.params.get(TOKEN_PARAM) == self.token:
                granted = _int(contact.params.get("expires"))
                if granted is not None:
                    return granted
        return _int(response.headers.get("Expires")) or self._expires

    def _nat_address(self, response: Response) -> tuple[str, int] | None:
        """Our address as the registrar saw it (Via ``received``/``rport``), when it is not our Contact's."""
        try:
            via = response.top_via
        except ValueError:
            return None
        received = via.params.get("received")
        rport = _int(via.params.get("rport"))
        if not received and rport is None:
            return None
        ours = parse_name_addr(self.env.contact(self.spec.destination))
        assert isinstance(ours.uri, SipUri)
        seen = (received or ours.uri.host, rport or ours.uri.port or 5060)
        return None if seen == (ours.uri.host, ours.uri.port or 5060) else seen

    def _failed(self, now: float, response: Response | None) -> None:
        self._failures += 1
        wait = min(MAX_BACKOFF, self.spec.retry_base * 2 ** (self._failures - 1))
        retry_after = _int(parse_header_params(response.headers.get("Retry-After") or "")[0]) if response else None
        if retry_after is not None:
            wait = max(wait, float(retry_after))
        self.expires_at = None
        self.next_attempt = now + wait
        self._arm("retry", now + wait)
        self.deadlines.pop("keepalive", None)
        self._change(RegistrationState.FAILING)

    def _unregistered(self) -> None:
        self.deadlines.clear()
        self.expires_at = self.next_attempt = None
        self._change(RegistrationState.UNREGISTERED)

    def _change(self, state: RegistrationState) -> None:
        self.state = state
        self._outputs.append(
            Emit(RegistrationChanged(self.handle, state.value, self.last_status, self.expires_at, self.next_attempt))
        )

    # ---- timers ---------------------------------------------------------------------------------------------

    def _arm(self, name: str, due: float) -> None:
        self.deadlines[name] = due
        self._outputs.append(SetTimer(due))

    def handle_timer(self, now: float) -> None:
        for name in [n for n, due in self.deadlines.items() if due <= now]:
            del self.deadlines[name]
            if name in ("refresh", "retry"):
                self._register(now, self._expires)
            elif name == "keepalive" and self.state is RegistrationState.REGISTERED:
                self._keepalive(now)

    def _keepalive(self, now: float) -> None:
        """CRLF on a stream (RFC 5626 §3.5.1); OPTIONS on UDP, whose silence means the binding is lost."""
        peer = self.spec.destination
        if peer.reliable:
            self._outputs.append(SendDatagram(b"\r\n\r\n", peer))
        else:
            options = Request(method="OPTIONS", uri=self.spec.registrar)
            options.headers.add("Via", self.env.via(peer))
            options.headers.add("Max-Forwards", "70")
            options.headers.add("From", str(NameAddr(self.spec.aor).with_tag(new_tag())))
            options.headers.add("To", str(NameAddr(self.spec.registrar)))
            options.headers.add("Call-ID", new_tag() + new_tag() + "@sipbridge")
            options.headers.add("CSeq", "1 OPTIONS")
            self._outputs.append(SendRequest(options, peer))
        self._arm("keepalive", now + self.spec.keepalive_interval)


def _int(text: str | None) -> int | None:
    """A registrar's number (expires, Min-Expires, rport, Retry-After): 32 bits at most, None when it is not one."""
    return bounded_int(text.strip(), 2**32 - 1) if text is not None else None
