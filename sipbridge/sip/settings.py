"""The stack's own configuration: plain values, filled in by sipbridge.config from config.yaml."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .offer_answer import CODECS, DEFAULT_CODECS
from .stun import DEFAULT_STUN_SERVERS
from .tls_policy import TlsPolicy


@dataclass(frozen=True)
class SipSettings:
    bind_host: str = "0.0.0.0"
    port: int = 5060  # sip_port_listen (sip_port when not set): UDP and TCP listeners
    advertised_port: int | None = None  # sip_port, when it differs from the listening port (port mapping)
    tls_port: int | None = None  # TLS listener, only when a certificate is given
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_ca_file: str | None = None  # trust anchors for outgoing TLS; None uses the system store
    tls_client_cert: tuple[str, str] | None = None  # (certificate, key) files shown to every TLS peer we call
    tls_verify_clients: str | None = None  # CA file: the TLS listener then requires a client certificate from it
    tls_policy: TlsPolicy | None = None  # versions, cipher suites, ALPN, key log of every TLS context (tls block)
    advertised_tls_port: int | None = None  # tls.port, when it differs from the TLS listener's port
    sip_hostname: str = ""  # host in our Contact towards TLS peers; "${IP}" is the signalling IP with dashes
    ws_port: int | None = None  # SIP over WebSocket (RFC 7118) listener
    wss_port: int | None = None  # the same over TLS (needs the TLS certificate)
    transports: tuple[str, ...] = ("UDP", "TCP")
    advertised_host: str | None = None  # nat_1_to_1_ip
    advertised_host_v6: str | None = None  # towards IPv6 peers when listening dual-stack (bind_host "::")
    use_external_ip: bool = False  # learn the advertised address by STUN at start (when advertised_host is None)
    local_net: str = ""  # on a wildcard bind, signal from the interface address in this network
    stun_servers: tuple[str, ...] = DEFAULT_STUN_SERVERS
    hide_inbound_port: bool = False  # no 100 Trying and no 400 for unverified or malformed requests
    add_record_route: bool = False  # Record-Route (our Contact, ;lr) on our responses to INVITEs
    outbound_routes: tuple[str, ...] = ()  # Route values (loose routes) on our INVITEs: the first is where they go
    user_agent: str = "sipbridge"
    realm: str = "sipbridge"  # digest realm for challenges
    # Key our digest nonces are signed with; nodes behind one front share it, so any node verifies a caller's
    # answer to another node's challenge. None: a random key per process.
    nonce_secret: bytes | None = None
    codecs: tuple[str, ...] = DEFAULT_CODECS  # preference order
    session_expires: int = 1800  # RFC 4028 interval we ask for on outbound calls
    min_se: int = 90  # smallest session interval we accept (422 below it)
    stream_idle_timeout: float = 600.0  # close TCP/TLS connections idle this long
    stream_message_deadline: float = 32.0  # a TCP/TLS message (and a new connection's first one) must arrive whole
    max_connections_per_source: int = 64  # TCP/TLS connections one host may open to us at once
    max_pending_invites: int = 0  # shed new INVITEs with 503 while this many are unanswered (0: no limit)
    # Shed new INVITEs with 503 while the event loop runs this many seconds late (0: never; 0.25 suits a node).
    overload_lag: float = 0.0
    # An outbound INVITE with other targets left (RFC 3263) moves on when its target sends nothing this long.
    failover_timeout: float = 4.0
    dns_servers: tuple[tuple[str, int], ...] = ()  # (address, port) of the DNS servers for RFC 3263; () = system's


def codecs_from_config(enabled: Mapping[str, bool]) -> tuple[str, ...]:
    """config.yaml's ``codecs`` map (keys like ``PCMU/8000`` or ``G722``) as our preference order: the default
    order minus what is switched off, plus known codecs switched on. telephone-event is always offered."""
    switches = {name.split("/")[0].lower(): on for name, on in enabled.items()}
    order = [c for c in DEFAULT_CODECS if switches.get(c.lower(), True)]
    order += [c for c in CODECS if switches.get(c.lower()) and c not in order]
    return tuple(order)
