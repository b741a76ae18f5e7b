"""Configuration: the Go SIP service's config.yaml keys, plus the few keys of our own.

A config.yaml written for LiveKit's Go service (github.com/livekit/sip) loads unchanged: keys we know are checked,
keys we do not act on are kept and reported once at start-up instead of failing. Any invalid value stops start-up
with a `ConfigError` whose message starts with the key it is about.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sipbridge import config_values as values
from sipbridge.inspector import settings as inspector_settings
from sipbridge.inspector.settings import InspectorSettings
from sipbridge.room.transport import DEFAULT_ROOM_TRANSPORT, ROOM_TRANSPORTS, RoomTransport
from sipbridge.sip.errors import SipParseError
from sipbridge.sip.locality import contact_hostname
from sipbridge.sip.tls_policy import TlsPolicy, TlsPolicyError, parse_tls_policy
from sipbridge.sip.uri import SipUri, parse_name_addr, parse_uri

DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"
DEV_WS_URL = "ws://localhost:7880"
DEFAULT_API_PORT = 8090
LOG_LEVELS = ("debug", "info", "warn", "warning", "error")


class ConfigError(ValueError):
    """An invalid configuration; the message names the key first (``rtp_port: ...``)."""


@dataclass(frozen=True)
class PortRange:
    start: int
    end: int

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"

    def __len__(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class RedisConfig:
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
    """Ours: how calls join their rooms: "sdk" (the livekit rtc SDK) or "lean" (aiortc for the connection, media
    on our own cadence); docs/room.md."""
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


_KNOWN_KEYS = frozenset(
    {
        "api_key",
        "api_secret",
        "ws_url",
        "redis",
        "api_port",
        "storage",
        "sip_port",
        "sip_port_listen",
        "sip_hostname",
        "add_record_route",
        "outbound_route_headers",
        "audio_dtmf",
        "rtp_port",
        "listen_ip",
        "use_external_ip",
        "nat_1_to_1_ip",
        "health_port",
        "prometheus_port",
        "max_active_calls",
        "hide_inbound_port",
        "cluster_id",
        "codecs",
        "logging",
        "inbound_early_media",
        "drain_timeout",
        "api_max_body",
        "symmetric_rtp",
        "log_level",
        "max_cpu_utilization",
        "sip_trunk_ids",
        "local_net",
        "media_use_external_ip",
        "media_nat_1_to_1_ip",
        "media_timeout",
        "media_timeout_initial",
        "ignore_local_addr_in_sdp",
        "sip_ringing_interval",
        "max_pending_invites",
        "overload_lag",
        "inspector_port",
        "inspector",
        "room_transport",
        "tls",
        "dns",
        "registrations",
        "websocket",
    }
)


def load_config(path: str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load configuration from ``path``, else ``SIP_CONFIG_FILE``, else ``SIP_CONFIG_BODY``, else defaults.

    ``LIVEKIT_API_KEY``, ``LIVEKIT_API_SECRET`` and ``LIVEKIT_WS_URL`` fill the keys a file leaves out, as in the
    Go service.
    """
    env = os.environ if environ is None else environ
    body: str | None = None
    if path is None:
        path = env.get("SIP_CONFIG_FILE") or None
    if path is not None:
        try:
            body = Path(path).read_text()
        except OSError as e:
            raise ConfigError(f"config file {path}: {e.strerror or e}") from e
    elif env.get("SIP_CONFIG_BODY"):
        body = env["SIP_CONFIG_BODY"]
    return parse_config(body, env)


def parse_config(body: str | None, env: Mapping[str, str]) -> Config:
    """Build a `Config` from YAML text (``None`` = no configuration at all) and the environment."""
    raw: dict[str, Any] = {}
    if body is not None:
        try:
            loaded = yaml.safe_load(body)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"config: invalid YAML{where}: {getattr(e, 'problem', None) or e}") from e
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("config: the top level must be a mapping of keys to values")
        raw = loaded

    embedded_default = body is None and not any(
        env.get(k) for k in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "LIVEKIT_WS_URL")
    )
    ws_url = _str(raw, "ws_url") or env.get("LIVEKIT_WS_URL", "")
    api_key = _str(raw, "api_key") or env.get("LIVEKIT_API_KEY", "")
    api_secret = _str(raw, "api_secret") or env.get("LIVEKIT_API_SECRET", "")
    local_livekit = not ws_url
    if local_livekit:
        # No LiveKit server configured: we run a dev server beside us, which takes whatever keys we give it.
        ws_url = DEV_WS_URL
        if not api_key and not api_secret:
            api_key, api_secret = DEV_API_KEY, DEV_API_SECRET
    if not ws_url.startswith(("ws://", "wss://", "http://", "https://")):
        raise ConfigError(f"ws_url: {ws_url!r} is not a ws://, wss://, http:// or https:// URL")
    if not api_key:
        raise ConfigError("api_key: missing (set it in the config file or LIVEKIT_API_KEY)")
    if not api_secret:
        raise ConfigError("api_secret: missing (set it in the config file or LIVEKIT_API_SECRET)")

    redis_cfg = _redis(raw.get("redis"))
    sip_port = _port(raw, "sip_port", 5060)
    api_port: int | None = _port(raw, "api_port", 0) or None
    if api_port is None and redis_cfg is None:
        api_port = DEFAULT_API_PORT
    storage = raw.get("storage") or {}
    if not isinstance(storage, dict):
        raise ConfigError("storage: must be a mapping with a 'path' key")
    storage_path = Path(str(storage["path"])).expanduser() if storage.get("path") else default_storage_path()

    logging_cfg = raw.get("logging") or {}
    if not isinstance(logging_cfg, dict):
        raise ConfigError("logging: must be a mapping (e.g. {level: info})")
    log_level = str(logging_cfg.get("level") or raw.get("log_level") or "info").lower()  # log_level: the Go README's
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"logging.level: {log_level!r} is not one of {', '.join(LOG_LEVELS)}")

    use_external_ip = _bool(raw, "use_external_ip")
    nat_ip = _str(raw, "nat_1_to_1_ip")
    if use_external_ip and nat_ip:
        raise ConfigError("nat_1_to_1_ip: use_external_ip and nat_1_to_1_ip can not both be set")
    if nat_ip:
        _ip(nat_ip, "nat_1_to_1_ip")
    listen_ip = _str(raw, "listen_ip")
    if listen_ip:
        _ip(listen_ip, "listen_ip")

    codecs = raw.get("codecs") or {}
    if not isinstance(codecs, dict) or not all(isinstance(v, bool) for v in codecs.values()):
        raise ConfigError("codecs: must map codec names to true/false (e.g. {PCMU: true, G722: false})")

    drain_timeout = raw.get("drain_timeout", DEFAULT_DRAIN_TIMEOUT)
    if not isinstance(drain_timeout, int | float) or isinstance(drain_timeout, bool) or drain_timeout < 0:
        raise ConfigError(f"drain_timeout: {drain_timeout!r} is not a number of seconds")

    api_max_body = raw.get("api_max_body", DEFAULT_API_MAX_BODY)
    if not isinstance(api_max_body, int) or isinstance(api_max_body, bool) or api_max_body < 1024:
        raise ConfigError(f"api_max_body: {api_max_body!r} is not a number of bytes of at least 1024")

    max_pending = raw.get("max_pending_invites", DEFAULT_MAX_PENDING_INVITES)
    if not isinstance(max_pending, int) or isinstance(max_pending, bool) or max_pending < 0:
        raise ConfigError(f"max_pending_invites: {max_pending!r} is not a non-negative integer")
    overload_lag = raw.get("overload_lag", DEFAULT_OVERLOAD_LAG)
    if not isinstance(overload_lag, int | float) or isinstance(overload_lag, bool) or overload_lag < 0:
        raise ConfigError(f"overload_lag: {overload_lag!r} is not a number of seconds")

    media_use_external_ip = _bool(raw, "media_use_external_ip")
    media_nat_ip = _str(raw, "media_nat_1_to_1_ip")
    if media_use_external_ip and media_nat_ip:
        raise ConfigError("media_nat_1_to_1_ip: media_use_external_ip and media_nat_1_to_1_ip can not both be set")
    if media_nat_ip:
        _ip(media_nat_ip, "media_nat_1_to_1_ip")
    levels = logging_cfg.get("component_levels") or {}
    if not isinstance(levels, dict) or not all(str(v).lower() in LOG_LEVELS for v in levels.values()):
        raise ConfigError(f"logging.component_levels: must map components to one of {', '.join(LOG_LEVELS)}")
    ringing_interval = values.duration(raw, "sip_ringing_interval", DEFAULT_RINGING_INTERVAL, ConfigError)
    if not 1 <= ringing_interval <= 60:
        ringing_interval = DEFAULT_RINGING_INTERVAL  # as the Go service: out of 1-60 s means the default
    room_transport = raw.get("room_transport", DEFAULT_ROOM_TRANSPORT)
    if room_transport not in ROOM_TRANSPORTS:
        raise ConfigError(f"room_transport: {room_transport!r} is not one of {', '.join(ROOM_TRANSPORTS)}")

    max_calls = raw.get("max_active_calls", 0)
    if not isinstance(max_calls, int) or isinstance(max_calls, bool) or max_calls < 0:
        raise ConfigError(f"max_active_calls: {max_calls!r} is not a non-negative integer")

    return Config(
        api_key=api_key,
        api_secret=api_secret,
        ws_url=ws_url,
        redis=redis_cfg,
        api_port=api_port,
        storage_path=storage_path,
        sip_port=sip_port,
        sip_port_listen=_port(raw, "sip_port_listen", 0) or sip_port,
        sip_hostname=_sip_hostname(_str(raw, "sip_hostname")),
        add_record_route=_bool(raw, "add_record_route"),
        outbound_route_headers=_routes(raw.get("outbound_route_headers")),
        audio_dtmf=_bool(raw, "audio_dtmf"),
        tls=_tls(raw.get("tls")),
        dns=_dns(raw.get("dns")),
        registrations=_registrations(raw.get("registrations")),
        websocket=_websocket(raw.get("websocket"), has_tls=raw.get("tls") is not None),
        rtp_port=_port_range(raw.get("rtp_port")),
        listen_ip=listen_ip,
        use_external_ip=use_external_ip,
        nat_1_to_1_ip=nat_ip,
        health_port=_port(raw, "health_port", 0),
        prometheus_port=_port(raw, "prometheus_port", 0),
        max_active_calls=max_calls,
        hide_inbound_port=_bool(raw, "hide_inbound_port"),
        cluster_id=_str(raw, "cluster_id"),
        inbound_early_media=_bool(raw, "inbound_early_media"),
        drain_timeout=float(drain_timeout),
        api_max_body=api_max_body,
        max_pending_invites=max_pending,
        overload_lag=float(overload_lag),
        symmetric_rtp=_bool(raw, "symmetric_rtp"),
        room_transport=room_transport,
        codecs=dict(codecs),
        log_level="warning" if log_level == "warn" else log_level,
        log_json=_bool(logging_cfg, "json"),
        log_component_levels={str(k): str(v).lower() for k, v in levels.items()},
        media_timeout=values.duration(raw, "media_timeout", DEFAULT_MEDIA_TIMEOUT, ConfigError)
        or DEFAULT_MEDIA_TIMEOUT,
        media_timeout_initial=values.duration(raw, "media_timeout_initial", DEFAULT_MEDIA_TIMEOUT_INITIAL, ConfigError)
        or DEFAULT_MEDIA_TIMEOUT_INITIAL,
        ignore_local_addr_in_sdp=_bool(raw, "ignore_local_addr_in_sdp"),
        media_use_external_ip=media_use_external_ip,
        media_nat_1_to_1_ip=media_nat_ip,
        sip_ringing_interval=ringing_interval,
        max_cpu_utilization=values.fraction(raw, "max_cpu_utilization", DEFAULT_MAX_CPU_UTILIZATION, ConfigError),
        sip_trunk_ids=values.string_list(raw, "sip_trunk_ids", ConfigError),
        local_net=values.network(raw, "local_net", ConfigError),
        local_livekit=local_livekit,
        embedded_default=embedded_default,
        ignored_keys=_ignored_keys(raw),
        inspector=inspector_settings.parse(raw, ConfigError),
    )


_KNOWN_TLS_KEYS = frozenset(
    {"port", "port_listen", "certs", "key_log", "min_version", "max_version", "cipher_suites", "alpn"}
    | {"ca_file", "client_certs", "verify_clients"}  # ours
)
_KNOWN_BLOCK_KEYS = {"logging": frozenset({"level", "json", "component_levels"}), "tls": _KNOWN_TLS_KEYS}


def _ignored_keys(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """Keys present in the file that we do not act on: the Go service's with no effect here (`go_keys`), and
    unknown ones, listed too so that typos are visible."""
    ignored = [k for k in raw if k not in _KNOWN_KEYS]
    for block, known in _KNOWN_BLOCK_KEYS.items():
        inner = raw.get(block)
        if isinstance(inner, dict):
            ignored += [f"{block}.{k}" for k in inner if k not in known]
    return tuple(sorted(ignored))


def _sip_hostname(template: str) -> str:
    """``sip_hostname`` checked as the Go service checks it: once ``${IP}`` is replaced (by digits and dashes
    only, so any IP shows the same), none of ``$%{}[]:/|`` or a space may be left."""
    if template:
        try:
            contact_hostname(template, "192.0.2.1")
        except ValueError as e:
            raise ConfigError(f"sip_hostname: {e} (a host name, '${{IP}}' standing for the node's IP)") from None
    return template


def _routes(value: Any) -> tuple[str, ...]:
    """``outbound_route_headers``: Route header values, each a SIP URI in angle brackets."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError("outbound_route_headers: must be a list of Route values like <sip:proxy:5060;lr>")
    for i, route in enumerate(value):
        try:
            uri = parse_name_addr(route).uri
        except SipParseError as e:
            raise ConfigError(f"outbound_route_headers[{i}]: {route!r} is not a Route value: {e}") from None
        if not isinstance(uri, SipUri):
            raise ConfigError(f"outbound_route_headers[{i}]: {route!r} does not name a sip: or sips: URI")
    return tuple(value)


def _str(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ConfigError(f"{key}: must be a string, not {type(value).__name__}")
    return str(value)


def _bool(raw: Mapping[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: must be true or false, not {value!r}")
    return value


def _port(raw: Mapping[str, Any], key: str, default: int) -> int:
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise ConfigError(f"{key}: {value!r} is not a port number (0-65535)")
    return value


def _port_range(value: Any) -> PortRange:
    """Parse ``rtp_port`` the ways the Go service accepts it: "10000-20000", a single port, or {start, end}."""
    if value is None:
        return PortRange(10000, 20000)
    try:
        if isinstance(value, dict):
            start, end = int(value["start"]), int(value["end"])
        elif isinstance(value, int) and not isinstance(value, bool):
            start = end = value
        elif isinstance(value, str) and "-" in value:
            a, b = value.split("-", 1)
            start, end = int(a), int(b)
        elif isinstance(value, str):
            start = end = int(value)
        else:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"rtp_port: {value!r} is not a port range like 10000-20000") from None
    if not (1 <= start <= 65535 and 1 <= end <= 65535):
        raise ConfigError(f"rtp_port: {start}-{end} is outside 1-65535")
    if start > end:
        raise ConfigError(f"rtp_port: range {start}-{end} is empty (the start must not exceed the end)")
    return PortRange(start, end)


def _tls(value: Any) -> TlsConfig | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError("tls: must be a mapping with port and certs")
    port = _port(value, "port", 5061)
    certs = value.get("certs") or []
    if not isinstance(certs, list) or not certs or not isinstance(certs[0], dict):
        raise ConfigError("tls.certs: needs at least one {cert_file, key_file}")
    cert, key = certs[0].get("cert_file"), certs[0].get("key_file")
    if not cert or not key:
        raise ConfigError("tls.certs[0]: cert_file and key_file are both required")
    for name, path in (("cert_file", cert), ("key_file", key)):
        _readable(f"tls.certs[0].{name}", path)
    ca_file = value.get("ca_file")
    if ca_file is not None:
        _readable("tls.ca_file", ca_file)
    verify_clients = value.get("verify_clients")
    if verify_clients is not None:
        _readable("tls.verify_clients", verify_clients)
    client_certs = value.get("client_certs") or []
    if not isinstance(client_certs, list):
        raise ConfigError("tls.client_certs: must be a list of {cert_file, key_file, trunks}")
    parsed = tuple(_client_cert(f"tls.client_certs[{i}]", entry) for i, entry in enumerate(client_certs))
    if sum(1 for c in parsed if not c.trunks) > 1:
        raise ConfigError("tls.client_certs: only one entry may leave out trunks (the default certificate)")
    return TlsConfig(
        port, _port(value, "port_listen", 0) or port, str(cert), str(key),
        ca_file=str(ca_file) if ca_file is not None else None, client_certs=parsed,
        verify_clients=str(verify_clients) if verify_clients is not None else None, policy=_tls_policy(value),
    )  # fmt: skip


def _tls_policy(value: Mapping[str, Any]) -> TlsPolicy:
    """``min_version``, ``max_version``, ``cipher_suites``, ``alpn`` and ``key_log``, with the Go meanings."""
    lists: dict[str, list[str] | None] = {}
    for key in ("cipher_suites", "alpn"):
        items = value.get(key)
        if items is not None and (not isinstance(items, list) or not all(isinstance(i, str) for i in items)):
            raise ConfigError(f"tls.{key}: must be a list of names")
        lists[key] = items
    texts: dict[str, str] = {}
    for key in ("min_version", "max_version", "key_log"):
        text = value.get(key) or ""
        if not isinstance(text, str):
            raise ConfigError(f"tls.{key}: must be a string, not {type(text).__name__}")
        texts[key] = text
    key_log = str(Path(texts["key_log"]).expanduser()) if texts["key_log"] else ""
    if key_log and not Path(key_log).parent.is_dir():
        raise ConfigError(f"tls.key_log: {key_log}: its directory does not exist")
    try:
        return parse_tls_policy(
            min_version=texts["min_version"], max_version=texts["max_version"],
            cipher_suites=lists["cipher_suites"] or (), alpn=lists["alpn"], key_log=key_log,
        )  # fmt: skip
    except TlsPolicyError as e:
        raise ConfigError(str(e)) from None


def _client_cert(where: str, entry: Any) -> ClientCert:
    if not isinstance(entry, dict) or not entry.get("cert_file") or not entry.get("key_file"):
        raise ConfigError(f"{where}: needs cert_file and key_file")
    _readable(f"{where}.cert_file", entry["cert_file"])
    _readable(f"{where}.key_file", entry["key_file"])
    trunks = entry.get("trunks") or []
    if not isinstance(trunks, list) or not all(isinstance(t, str) and t for t in trunks):
        raise ConfigError(f"{where}.trunks: must be a list of outbound trunk IDs")
    return ClientCert(str(entry["cert_file"]), str(entry["key_file"]), tuple(trunks))


def _readable(key: str, path: Any) -> None:
    if not Path(str(path)).is_file():
        raise ConfigError(f"{key}: {path} is not a readable file")


def _dns(value: Any) -> DnsConfig:
    if value is None:
        return DnsConfig()
    if not isinstance(value, dict):
        raise ConfigError("dns: must be a mapping (nameservers, failover_timeout)")
    servers = value.get("nameservers") or []
    if not isinstance(servers, list):
        raise ConfigError("dns.nameservers: must be a list of addresses (192.0.2.53 or 192.0.2.53:5353)")
    parsed = tuple(_nameserver(str(server)) for server in servers)
    timeout = value.get("failover_timeout", 4.0)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise ConfigError(f"dns.failover_timeout: {timeout!r} is not a positive number of seconds")
    return DnsConfig(parsed, float(timeout))


def _websocket(value: Any, *, has_tls: bool) -> WebSocketConfig:
    if value is None:
        return WebSocketConfig()
    if not isinstance(value, dict):
        raise ConfigError("websocket: must be a mapping with port and/or tls_port")
    port = _port(value, "port", 0)
    tls_port = _port(value, "tls_port", 0)
    if tls_port and not has_tls:
        raise ConfigError("websocket.tls_port: wss needs the tls block's certificate (tls.certs)")
    return WebSocketConfig(port or None, tls_port or None)


def _registrations(value: Any) -> tuple[RegistrationConfig, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError("registrations: must be a list of {registrar, username, password, trunk, ...}")
    parsed = tuple(_registration(f"registrations[{i}]", entry) for i, entry in enumerate(value))
    names = [r.name for r in parsed]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ConfigError(f"registrations: two registrations are named {duplicate!r}")
    return parsed


def _registration(where: str, entry: Any) -> RegistrationConfig:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping with registrar, username and trunk")
    for key in ("registrar", "outbound_proxy"):
        if entry.get(key) is not None:
            _sip_uri(f"{where}.{key}", entry[key])
    if not entry.get("registrar"):
        raise ConfigError(f"{where}.registrar: missing (a SIP URI such as sip:pbx.example.com)")
    username = _str(entry, "username")
    if not username:
        raise ConfigError(f"{where}.username: missing")
    transport = _str(entry, "transport").upper()
    if transport and transport not in REGISTRATION_TRANSPORTS:
        raise ConfigError(f"{where}.transport: {transport!r} is not one of udp, tcp, tls")
    expires = entry.get("expires", 3600)
    if not isinstance(expires, int) or isinstance(expires, bool) or expires < 1:
        raise ConfigError(f"{where}.expires: {expires!r} is not a positive number of seconds")
    keepalive = entry.get("keepalive_interval", 30)
    if not isinstance(keepalive, int | float) or isinstance(keepalive, bool) or keepalive < 0:
        raise ConfigError(f"{where}.keepalive_interval: {keepalive!r} is not a number of seconds (0: off)")
    contact_user = _str(entry, "contact_user")
    if contact_user and not contact_user.replace("-", "").replace("_", "").replace(".", "").replace("+", "").isalnum():
        raise ConfigError(f"{where}.contact_user: {contact_user!r} may only have letters, digits and - _ . +")
    registrar = str(entry["registrar"])
    host = parse_uri(registrar)
    assert isinstance(host, SipUri)
    return RegistrationConfig(
        name=_str(entry, "name") or f"{username}@{host.host}", registrar=registrar, username=username,
        password=_str(entry, "password"), auth_username=_str(entry, "auth_username"), realm=_str(entry, "realm"),
        transport=transport, expires=expires, outbound_proxy=_str(entry, "outbound_proxy"),
        contact_user=contact_user, trunk=_str(entry, "trunk"), keepalive_interval=float(keepalive),
    )  # fmt: skip


def _sip_uri(key: str, value: Any) -> None:
    try:
        uri = parse_uri(str(value))
    except SipParseError as e:
        raise ConfigError(f"{key}: {value!r} is not a SIP URI: {e}") from None
    if not isinstance(uri, SipUri):
        raise ConfigError(f"{key}: {value!r} is not a sip: or sips: URI")


def _nameserver(text: str) -> tuple[str, int]:
    """``192.0.2.53``, ``192.0.2.53:5353``, ``2001:db8::53`` or ``[2001:db8::53]:5353``."""
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or port
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    _ip(host, "dns.nameservers")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"dns.nameservers: {text!r} has no valid port")
    return host, int(port)


def _redis(value: Any) -> RedisConfig | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError("redis: must be a mapping with at least 'address'")
    unsupported = [k for k in ("sentinel_addresses", "cluster_addresses") if value.get(k)]
    if unsupported:
        raise ConfigError(f"redis.{unsupported[0]}: Redis Sentinel and Cluster are not supported yet")
    address = value.get("address")
    if not address or not isinstance(address, str):
        raise ConfigError("redis.address: missing (host:port of the Redis server)")
    db = value.get("db", 0)
    if not isinstance(db, int) or isinstance(db, bool) or db < 0:
        raise ConfigError(f"redis.db: {db!r} is not a database number")
    return RedisConfig(
        address=address,
        username=str(value.get("username") or ""),
        password=str(value.get("password") or ""),
        db=db,
        use_tls=bool(value.get("use_tls", False)),
    )


def _ip(value: str, key: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not an IP address") from None
