"""Reading config.yaml: where the text comes from (a file, ``SIP_CONFIG_FILE``, ``SIP_CONFIG_BODY``), the
LiveKit environment variables that fill what it leaves out, the top-level keys checked one by one, and the keys
we do not act on (reported at start-up rather than failing it).

The structured blocks are parsed by `sections`, single values by `values`; the result is a `model.Config`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sipbridge.room.transport import DEFAULT_ROOM_TRANSPORT, ROOM_TRANSPORTS

from . import sections, values
from .errors import ConfigError
from .model import (
    DEFAULT_API_MAX_BODY,
    DEFAULT_API_PORT,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_MAX_CPU_UTILIZATION,
    DEFAULT_MAX_PENDING_INVITES,
    DEFAULT_MEDIA_TIMEOUT,
    DEFAULT_MEDIA_TIMEOUT_INITIAL,
    DEFAULT_OVERLOAD_LAG,
    DEFAULT_RINGING_INTERVAL,
    DEV_API_KEY,
    DEV_API_SECRET,
    DEV_WS_URL,
    Config,
    default_storage_path,
)

LOG_LEVELS = ("debug", "info", "warn", "warning", "error")

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
    ws_url = values.string(raw, "ws_url") or env.get("LIVEKIT_WS_URL", "")
    api_key = values.string(raw, "api_key") or env.get("LIVEKIT_API_KEY", "")
    api_secret = values.string(raw, "api_secret") or env.get("LIVEKIT_API_SECRET", "")
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

    redis_cfg = sections.redis(raw.get("redis"))
    sip_port = values.port(raw, "sip_port", 5060)
    api_port: int | None = values.port(raw, "api_port", 0) or None
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

    use_external_ip, nat_ip = _external_address(raw, "")
    listen_ip = values.string(raw, "listen_ip")
    if listen_ip:
        values.ip_address(listen_ip, "listen_ip")

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

    media_use_external_ip, media_nat_ip = _external_address(raw, "media_")
    levels = logging_cfg.get("component_levels") or {}
    if not isinstance(levels, dict) or not all(str(v).lower() in LOG_LEVELS for v in levels.values()):
        raise ConfigError(f"logging.component_levels: must map components to one of {', '.join(LOG_LEVELS)}")
    ringing_interval = values.duration(raw, "sip_ringing_interval", DEFAULT_RINGING_INTERVAL)
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
        sip_port_listen=values.port(raw, "sip_port_listen", 0) or sip_port,
        sip_hostname=sections.sip_hostname(values.string(raw, "sip_hostname")),
        add_record_route=values.boolean(raw, "add_record_route"),
        outbound_route_headers=sections.routes(raw.get("outbound_route_headers")),
        audio_dtmf=values.boolean(raw, "audio_dtmf"),
        tls=sections.tls(raw.get("tls")),
        dns=sections.dns(raw.get("dns")),
        registrations=sections.registrations(raw.get("registrations")),
        websocket=sections.websocket(raw.get("websocket"), has_tls=raw.get("tls") is not None),
        rtp_port=values.port_range(raw.get("rtp_port")),
        listen_ip=listen_ip,
        use_external_ip=use_external_ip,
        nat_1_to_1_ip=nat_ip,
        health_port=values.port(raw, "health_port", 0),
        prometheus_port=values.port(raw, "prometheus_port", 0),
        max_active_calls=max_calls,
        hide_inbound_port=values.boolean(raw, "hide_inbound_port"),
        cluster_id=values.string(raw, "cluster_id"),
        inbound_early_media=values.boolean(raw, "inbound_early_media"),
        drain_timeout=float(drain_timeout),
        api_max_body=api_max_body,
        max_pending_invites=max_pending,
        overload_lag=float(overload_lag),
        symmetric_rtp=values.boolean(raw, "symmetric_rtp"),
        room_transport=room_transport,
        codecs=dict(codecs),
        log_level="warning" if log_level == "warn" else log_level,
        log_json=values.boolean(logging_cfg, "json"),
        log_component_levels={str(k): str(v).lower() for k, v in levels.items()},
        media_timeout=values.duration(raw, "media_timeout", DEFAULT_MEDIA_TIMEOUT) or DEFAULT_MEDIA_TIMEOUT,
        media_timeout_initial=values.duration(raw, "media_timeout_initial", DEFAULT_MEDIA_TIMEOUT_INITIAL)
        or DEFAULT_MEDIA_TIMEOUT_INITIAL,
        ignore_local_addr_in_sdp=values.boolean(raw, "ignore_local_addr_in_sdp"),
        media_use_external_ip=media_use_external_ip,
        media_nat_1_to_1_ip=media_nat_ip,
        sip_ringing_interval=ringing_interval,
        max_cpu_utilization=values.fraction(raw, "max_cpu_utilization", DEFAULT_MAX_CPU_UTILIZATION),
        sip_trunk_ids=values.string_list(raw, "sip_trunk_ids"),
        local_net=values.network(raw, "local_net"),
        local_livekit=local_livekit,
        embedded_default=embedded_default,
        ignored_keys=_ignored_keys(raw),
        inspector=sections.inspector(raw),
    )


def _external_address(raw: Mapping[str, Any], prefix: str) -> tuple[bool, str]:
    """``{prefix}use_external_ip`` (found by STUN) or ``{prefix}nat_1_to_1_ip`` (given), not both: the signalling
    address (no prefix) and the media one (``media_``) are chosen the same way."""
    use_key, ip_key = f"{prefix}use_external_ip", f"{prefix}nat_1_to_1_ip"
    use_external_ip = values.boolean(raw, use_key)
    nat_ip = values.string(raw, ip_key)
    if use_external_ip and nat_ip:
        raise ConfigError(f"{ip_key}: {use_key} and {ip_key} can not both be set")
    if nat_ip:
        values.ip_address(nat_ip, ip_key)
    return use_external_ip, nat_ip


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
