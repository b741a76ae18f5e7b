"""Configuration: the Go SIP service's config.yaml keys, plus the few keys of our own.

A config.yaml written for LiveKit's Go service (github.com/livekit/sip) loads unchanged: keys we know are checked,
keys we do not act on are kept and reported once at start-up instead of failing. Any invalid value stops start-up
with a `ConfigError` whose message starts with the key it is about.

Modules: `model` (what a configuration is), `load` (reading config.yaml and the environment), `sections` (the
structured blocks: tls, dns, websocket, redis, registrations, inspector), `values` (single values the Go service's way),
`errors`. What the rest of the bridge uses is named here.
"""

from .errors import ConfigError
from .load import load_config, parse_config
from .model import (
    DEFAULT_API_PORT,
    DEV_API_KEY,
    DEV_API_SECRET,
    ClientCert,
    Config,
    DnsConfig,
    HepTarget,
    InspectorSettings,
    PortRange,
    RedisConfig,
    RegistrationConfig,
    TlsConfig,
    WebSocketConfig,
    default_storage_path,
)

__all__ = [
    "DEFAULT_API_PORT",
    "DEV_API_KEY",
    "DEV_API_SECRET",
    "ClientCert",
    "Config",
    "ConfigError",
    "DnsConfig",
    "HepTarget",
    "InspectorSettings",
    "PortRange",
    "RedisConfig",
    "RegistrationConfig",
    "TlsConfig",
    "WebSocketConfig",
    "default_storage_path",
    "load_config",
    "parse_config",
]
