"""What a loaded configuration is: frozen dataclasses, one per block of config.yaml, and their defaults.

Kept apart from reading config.yaml (`load`, `sections`, `values`): what each setting means and defaults to is
read here, without the checks around it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sipbridge.room.transport import DEFAULT_ROOM_TRANSPORT, RoomTransport
from sipbridge.sip.tls_policy import TlsPolicy

DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"
DEV_WS_URL = "ws://localhost:7880"
DEFAULT_API_PORT = 8090


@dataclass(frozen=True)
class PortRange:
    """``rtp_port``: the ports RTP may take, both ends included."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"

    def __len__(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class RedisConfig:
    """The ``redis`` block: livekit-server's Redis (trunks and rules, and the cluster's psrpc bus)."""

    address: str
    username: str = ""
    password: str = ""
    db: int = 0
    use_tls: bool = False

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        _, _, port = self.address.rpartition(":")
        return int(port) if port.isdigit() else 6379


DEFAULT_DRAIN_TIMEOUT = 600.0
DEFAULT_MEDIA_TIMEOUT = 15.0
DEFAULT_MEDIA_TIMEOUT_INITIAL = 30.0
DEFAULT_RINGING_INTERVAL = 1.0
DEFAULT_MAX_CPU_UTILIZATION = 0.9
DEFAULT_API_MAX_BODY = 1 << 20
DEFAULT_MAX_PENDING_INVITES = 200
DEFAULT_OVERLOAD_LAG = 0.5


@dataclass(frozen=True)
class ClientCert:
    """A certificate we show to TLS peers we call (mutual TLS): for the outbound ``trunks`` named, or for every
    TLS peer when ``trunks`` is empty."""

    cert_file: str
    key_file: str
    trunks: tuple[str, ...] = ()


@dataclass(frozen=True)
class TlsConfig:
    """SIP over TLS, the Go service's ``tls`` block: ``port`` (announced), ``port_listen``, ``certs``, and
    ``min_version``, ``max_version``, ``cipher_suites``, ``alpn``, ``key_log`` (the ``policy``, for our listener
    and the connections we open); ours: ``ca_file`` (whom we trust when calling out), ``client_certs`` (mutual TLS
    towards carriers) and ``verify_clients`` (a CA file: the listener then requires client certificates from it)."""

    port: int
    port_listen: int
    cert_file: str
    key_file: str
    ca_file: str | None = None
    client_certs: tuple[ClientCert, ...] = ()
    verify_clients: str | None = None
    policy: TlsPolicy = field(default_factory=TlsPolicy)

    @property
    def default_client_cert(self) -> tuple[str, str] | None:
        for cert in self.client_certs:
            if not cert.trunks:
                return cert.cert_file, cert.key_file
        return None

    def client_cert_for(self, trunk_id: str) -> tuple[str, str] | None:
        """The certificate named for this outbound trunk, if any (else the default one applies)."""
        for cert in self.client_certs:
            if trunk_id and trunk_id in cert.trunks:
                return cert.cert_file, cert.key_file
        return None


@dataclass(frozen=True)
class WebSocketConfig:
    """Ours: SIP over WebSocket (RFC 7118, docs/websocket.md): ``port`` for ws://, ``tls_port`` for wss:// (with
    the ``tls`` block's certificate)."""

    port: int | None = None
    tls_port: int | None = None


@dataclass(frozen=True)
class DnsConfig:
    """Ours: RFC 3263 resolution of outbound trunk hosts (docs/dns.md)."""

    nameservers: tuple[tuple[str, int], ...] = ()
    """(address, port) pairs; empty: the system's resolver configuration."""
    failover_timeout: float = 4.0
    """Seconds a target may stay silent before the INVITE moves to the next one."""


REGISTRATION_TRANSPORTS = ("UDP", "TCP", "TLS")


@dataclass(frozen=True)
class RegistrationConfig:
    """Ours: one outbound registration (docs/registrations.md): the bridge registers ``username`` at
    ``registrar`` and takes the calls sent to it through the inbound trunk ``trunk``."""

    name: str
    registrar: str
    username: str
    password: str = ""
    auth_username: str = ""
    realm: str = ""
    transport: str = ""  # "" = the registrar URI's (RFC 3263)
    expires: int = 3600
    outbound_proxy: str = ""
    contact_user: str = ""  # "" = username
    trunk: str = ""
    keepalive_interval: float = 30.0


DEFAULT_INSPECTOR_KEEP_CALLS = 200
DEFAULT_INSPECTOR_MAX_MEGABYTES = 64
DEFAULT_INSPECTOR_MAX_MESSAGES = 400
DEFAULT_HEP_CAPTURE_ID = 2001


@dataclass(frozen=True)
class HepTarget:
    host: str
    port: int


@dataclass(frozen=True)
class InspectorSettings:
    """Ours: ``inspector_port`` and the ``inspector`` block (docs/inspector.md)."""

    port: int = 0
    """``inspector_port``: where the web page listens; 0 means no page (traces are still kept for metrics and HEP)."""
    listen_ip: str = "127.0.0.1"
    """``inspector.listen_ip``: loopback unless the operator says otherwise (the page shows callers' numbers)."""
    keep_calls: int = DEFAULT_INSPECTOR_KEEP_CALLS
    """``inspector.keep_calls``: ended calls kept, the oldest dropped first."""
    max_megabytes: int = DEFAULT_INSPECTOR_MAX_MEGABYTES
    """``inspector.max_megabytes``: ended calls are dropped earlier when the kept traces would need more."""
    max_messages: int = DEFAULT_INSPECTOR_MAX_MESSAGES
    """``inspector.max_messages``: per call; beyond it the first and the last halves are kept."""
    hep: HepTarget | None = None
    """``inspector.hep``: ``host:port`` of a Homer (HEP v3 over UDP) collector."""
    hep_capture_id: int = DEFAULT_HEP_CAPTURE_ID
    hep_password: str = ""


@dataclass(frozen=True)
class Config:
    api_key: str
    api_secret: str
    ws_url: str
    redis: RedisConfig | None = None
    api_port: int | None = DEFAULT_API_PORT
    storage_path: Path = field(default_factory=lambda: default_storage_path())
    sip_port: int = 5060
    sip_port_listen: int = 5060
    sip_hostname: str = ""
    """Our host in the Contact of TLS calls; ``${IP}`` stands for the signalling IP, dots and colons as dashes."""
    add_record_route: bool = False
    """Record-Route ourselves in answers to INVITEs, so a caller's in-dialog requests come back to this node."""
    outbound_route_headers: tuple[str, ...] = ()
    """Route headers put on our INVITEs (a preloaded route: the first is where the INVITE goes)."""
    audio_dtmf: bool = False
    """Send digits as in-band tones too, mixed into the audio, beside the RFC 4733 events."""
    tls: TlsConfig | None = None
    dns: DnsConfig = DnsConfig()
    registrations: tuple[RegistrationConfig, ...] = ()
    websocket: WebSocketConfig = WebSocketConfig()
    rtp_port: PortRange = PortRange(10000, 20000)
    listen_ip: str = ""
    use_external_ip: bool = False
    nat_1_to_1_ip: str = ""
    health_port: int = 0
    prometheus_port: int = 0
    max_active_calls: int = 0
    hide_inbound_port: bool = False
    cluster_id: str = ""
    inbound_early_media: bool = False
    """Ours: ring inbound callers with 183 and our own ringback tone instead of a plain 180."""
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    """Ours: on SIGTERM, seconds the calls in progress may go on (no new ones are taken) before the node exits."""
    max_pending_invites: int = DEFAULT_MAX_PENDING_INVITES
    """Ours: new INVITEs get 503 (Retry-After) while this many are unanswered (0: no limit)."""
    overload_lag: float = DEFAULT_OVERLOAD_LAG
    """Ours: new INVITEs get 503 while the event loop runs this many seconds late (0: never)."""
    api_max_body: int = DEFAULT_API_MAX_BODY
    """Ours: the largest SIP API request body accepted, in bytes (larger ones get a Twirp error, unread)."""
    symmetric_rtp: bool = False
    """Send RTP to where the caller's RTP comes from even when that is not the address its SDP or its SIP
    came from (latched once, early in the call; docs/security.md)."""
    media_timeout: float = DEFAULT_MEDIA_TIMEOUT
    """Seconds without RTP, once it flowed, before a call is hung up (a trunk's ``media.media_timeout`` wins)."""
    media_timeout_initial: float = DEFAULT_MEDIA_TIMEOUT_INITIAL
    """Seconds to wait for a call's first RTP packet."""
    ignore_local_addr_in_sdp: bool = False
    """Latch to any RTP source early in a call whose SDP names a private address (as ``symmetric_rtp`` does)."""
    media_use_external_ip: bool = False
    media_nat_1_to_1_ip: str = ""
    """The address our SDP offers for media, when it differs from the signalling one."""
    sip_ringing_interval: float = DEFAULT_RINGING_INTERVAL
    """180 Ringing is repeated this often while an inbound call rings (1 to 60 s)."""
    max_cpu_utilization: float = DEFAULT_MAX_CPU_UTILIZATION
    """Above this share of the machine's CPU the node takes no new calls (and reports so on /health)."""
    sip_trunk_ids: tuple[str, ...] = ()
    """Cluster mode: this node takes outbound calls only for these trunks (empty: any)."""
    local_net: str = ""
    """The local network whose address the node signals from (when several interfaces have one)."""
    log_component_levels: Mapping[str, str] = field(default_factory=dict)
    """``logging.component_levels``: a log level per component (``sip``, ``media``, ``room``, ``livekit``...)."""
    room_transport: RoomTransport = DEFAULT_ROOM_TRANSPORT
    """Ours: how calls join their rooms: "lean", the default (aiortc for the connection, media on our own cadence),
    or "sdk" (the livekit rtc SDK); docs/room.md."""
    codecs: Mapping[str, bool] = field(default_factory=dict)
    log_level: str = "info"
    log_json: bool = False
    """``logging.json``: one JSON object per log line (sipbridge.logs)."""
    local_livekit: bool = False
    """True when no LiveKit server was configured: the bridge runs a dev livekit-server beside itself."""
    embedded_default: bool = False
    """True when no configuration at all was given (the out-of-the-box set-up)."""
    ignored_keys: tuple[str, ...] = ()
    """Go service keys we accept for compatibility but do not act on (reported at start-up)."""
    inspector: InspectorSettings = field(default_factory=InspectorSettings)
    """Ours: ``inspector_port`` and the ``inspector`` block (docs/inspector.md)."""

    @property
    def uses_redis(self) -> bool:
        return self.redis is not None


def default_storage_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sipbridge" / "store.db"
