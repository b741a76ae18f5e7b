"""The keys of config.yaml that have structure: the ``tls``, ``dns``, ``websocket``, ``redis``, ``registrations``
and ``inspector`` blocks, and the SIP syntax of ``sip_hostname`` and ``outbound_route_headers``.

Each parser takes the key's raw YAML value and returns its dataclass (`sipbridge.config.model`), checking what the
running bridge would otherwise trip over late: certificate files that are not there, URIs that do not parse, two
registrations of one name, a wss port without a certificate.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sipbridge.sip.errors import SipParseError
from sipbridge.sip.locality import contact_hostname
from sipbridge.sip.tls_policy import TlsPolicy, TlsPolicyError, parse_tls_policy
from sipbridge.sip.uri import SipUri, parse_name_addr, parse_uri

from . import values
from .errors import ConfigError
from .model import (
    DEFAULT_HEP_CAPTURE_ID,
    DEFAULT_INSPECTOR_KEEP_CALLS,
    DEFAULT_INSPECTOR_MAX_MEGABYTES,
    DEFAULT_INSPECTOR_MAX_MESSAGES,
    REGISTRATION_TRANSPORTS,
    ClientCert,
    DnsConfig,
    HepTarget,
    InspectorSettings,
    RedisConfig,
    RegistrationConfig,
    TlsConfig,
    WebSocketConfig,
)


def sip_hostname(template: str) -> str:
    """``sip_hostname`` checked as the Go service checks it: once ``${IP}`` is replaced (by digits and dashes
    only, so any IP shows the same), none of ``$%{}[]:/|`` or a space may be left."""
    if template:
        try:
            contact_hostname(template, "192.0.2.1")
        except ValueError as e:
            raise ConfigError(f"sip_hostname: {e} (a host name, '${{IP}}' standing for the node's IP)") from None
    return template


def routes(value: Any) -> tuple[str, ...]:
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


def tls(value: Any) -> TlsConfig | None:
    """The ``tls`` block: our certificate (the first of ``certs``), the files we trust and show, the policy."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError("tls: must be a mapping with port and certs")
    port = values.port(value, "port", 5061)
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
        port, values.port(value, "port_listen", 0) or port, str(cert), str(key),
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


def dns(value: Any) -> DnsConfig:
    """Ours: the ``dns`` block (nameservers, failover_timeout)."""
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


def websocket(value: Any, *, has_tls: bool) -> WebSocketConfig:
    """Ours: the ``websocket`` block; wss needs the ``tls`` block's certificate (``has_tls``)."""
    if value is None:
        return WebSocketConfig()
    if not isinstance(value, dict):
        raise ConfigError("websocket: must be a mapping with port and/or tls_port")
    port = values.port(value, "port", 0)
    tls_port = values.port(value, "tls_port", 0)
    if tls_port and not has_tls:
        raise ConfigError("websocket.tls_port: wss needs the tls block's certificate (tls.certs)")
    return WebSocketConfig(port or None, tls_port or None)


def registrations(value: Any) -> tuple[RegistrationConfig, ...]:
    """Ours: the ``registrations`` list; each registration's name must be unique (logs and /registrations use it)."""
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
    username = values.string(entry, "username")
    if not username:
        raise ConfigError(f"{where}.username: missing")
    transport = values.string(entry, "transport").upper()
    if transport and transport not in REGISTRATION_TRANSPORTS:
        raise ConfigError(f"{where}.transport: {transport!r} is not one of udp, tcp, tls")
    expires = entry.get("expires", 3600)
    if not isinstance(expires, int) or isinstance(expires, bool) or expires < 1:
        raise ConfigError(f"{where}.expires: {expires!r} is not a positive number of seconds")
    keepalive = entry.get("keepalive_interval", 30)
    if not isinstance(keepalive, int | float) or isinstance(keepalive, bool) or keepalive < 0:
        raise ConfigError(f"{where}.keepalive_interval: {keepalive!r} is not a number of seconds (0: off)")
    contact_user = values.string(entry, "contact_user")
    if contact_user and not contact_user.replace("-", "").replace("_", "").replace(".", "").replace("+", "").isalnum():
        raise ConfigError(f"{where}.contact_user: {contact_user!r} may only have letters, digits and - _ . +")
    registrar = str(entry["registrar"])
    host = parse_uri(registrar)
    assert isinstance(host, SipUri)
    text = values.string
    return RegistrationConfig(
        name=text(entry, "name") or f"{username}@{host.host}", registrar=registrar, username=username,
        password=text(entry, "password"), auth_username=text(entry, "auth_username"), realm=text(entry, "realm"),
        transport=transport, expires=expires, outbound_proxy=text(entry, "outbound_proxy"),
        contact_user=contact_user, trunk=text(entry, "trunk"), keepalive_interval=float(keepalive),
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
    values.ip_address(host, "dns.nameservers")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"dns.nameservers: {text!r} has no valid port")
    return host, int(port)


def redis(value: Any) -> RedisConfig | None:
    """The ``redis`` block (a single server: Sentinel and Cluster are refused, not ignored)."""
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


INSPECTOR_KEYS = frozenset(
    {"listen_ip", "keep_calls", "max_megabytes", "max_messages", "hep", "hep_capture_id", "hep_password"}
)


def inspector(raw: Mapping[str, Any]) -> InspectorSettings:
    """``inspector_port`` and the ``inspector`` block, from the whole configuration mapping ``raw``."""
    port = raw.get("inspector_port", 0)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ConfigError(f"inspector_port: {port!r} is not a port number (0-65535)")
    block = raw.get("inspector") or {}
    if not isinstance(block, dict):
        raise ConfigError("inspector: must be a mapping (e.g. {keep_calls: 200})")
    unknown = sorted(set(block) - INSPECTOR_KEYS)
    if unknown:
        raise ConfigError(f"inspector.{unknown[0]}: unknown key (known: {', '.join(sorted(INSPECTOR_KEYS))})")
    listen_ip = str(block.get("listen_ip") or "127.0.0.1")
    try:
        ipaddress.ip_address(listen_ip)
    except ValueError:
        raise ConfigError(f"inspector.listen_ip: {listen_ip!r} is not an IP address") from None
    hep = block.get("hep")
    password = block.get("hep_password") or ""
    if not isinstance(password, str):
        raise ConfigError("inspector.hep_password: must be a string")
    return InspectorSettings(
        port=port,
        listen_ip=listen_ip,
        keep_calls=_inspector_count(block, "keep_calls", DEFAULT_INSPECTOR_KEEP_CALLS, 0),
        max_megabytes=_inspector_count(block, "max_megabytes", DEFAULT_INSPECTOR_MAX_MEGABYTES, 1),
        max_messages=_inspector_count(block, "max_messages", DEFAULT_INSPECTOR_MAX_MESSAGES, 10),
        hep=_hep_target(hep) if hep else None,
        hep_capture_id=_inspector_count(block, "hep_capture_id", DEFAULT_HEP_CAPTURE_ID, 0),
        hep_password=password,
    )


def _inspector_count(block: Mapping[str, Any], key: str, default: int, least: int) -> int:
    value = block.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ConfigError(f"inspector.{key}: {value!r} is not an integer of at least {least}")
    return value


def _hep_target(value: Any) -> HepTarget:
    """``host:port``, ``[v6]:port`` or ``hep://host:port``."""
    text = str(value).removeprefix("hep://").removeprefix("hep:")
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ConfigError(f"inspector.hep: {value!r} is not host:port (e.g. homer.example.com:9060)")
    return HepTarget(host, int(port))
