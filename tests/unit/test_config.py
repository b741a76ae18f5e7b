"""Configuration loading: the Go service's keys and environment, our defaults, and one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipbridge.config import DEFAULT_API_PORT, ConfigError, PortRange, load_config, parse_config
from sipbridge.go_keys import NO_EFFECT

# The SIP_CONFIG_BODY of LiveKit's own docker-compose.yaml for its Go SIP service.
GO_COMPOSE_BODY = """
api_key: 'devkey'
api_secret: 'secret'
ws_url: 'ws://localhost:7880'
redis:
  address: 'localhost:6379'
sip_port: 5060
rtp_port: 10000-20000
use_external_ip: true
logging:
  level: debug
"""


def test_no_configuration_at_all_is_the_embedded_default() -> None:
    config = parse_config(None, {})
    assert (config.api_key, config.api_secret, config.ws_url) == ("devkey", "secret", "ws://localhost:7880")
    assert config.embedded_default and config.local_livekit
    assert config.redis is None
    assert config.api_port == DEFAULT_API_PORT
    assert config.sip_port == 5060
    assert config.rtp_port == PortRange(10000, 20000)


def test_go_service_compose_config_loads_unchanged() -> None:
    config = parse_config(GO_COMPOSE_BODY, {})
    assert config.redis is not None and config.redis.address == "localhost:6379"
    assert (config.redis.host, config.redis.port) == ("localhost", 6379)
    assert config.use_external_ip
    assert config.log_level == "debug"
    assert not config.local_livekit
    # A node with Redis and no api_port is a cluster node.
    assert config.api_port is None


def test_environment_fills_keys_the_file_leaves_out() -> None:
    env = {"LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s", "LIVEKIT_WS_URL": "wss://example.livekit.cloud"}
    config = parse_config("sip_port: 5070\n", env)
    assert (config.api_key, config.api_secret, config.ws_url) == ("k", "s", "wss://example.livekit.cloud")
    assert config.sip_port == 5070 and config.sip_port_listen == 5070
    assert not config.embedded_default


def test_file_values_win_over_environment() -> None:
    env = {"LIVEKIT_API_KEY": "env-key", "LIVEKIT_API_SECRET": "env-secret"}
    config = parse_config("api_key: file-key\napi_secret: file-secret\nws_url: ws://lk:7880\n", env)
    assert (config.api_key, config.api_secret) == ("file-key", "file-secret")


def test_sources_in_order_flag_then_file_env_then_body(tmp_path: Path) -> None:
    flag_file = tmp_path / "flag.yaml"
    flag_file.write_text("sip_port: 1111\n")
    env_file = tmp_path / "env.yaml"
    env_file.write_text("sip_port: 2222\n")
    env = {"SIP_CONFIG_FILE": str(env_file), "SIP_CONFIG_BODY": "sip_port: 3333\n"}
    assert load_config(str(flag_file), env).sip_port == 1111
    assert load_config(None, env).sip_port == 2222
    assert load_config(None, {"SIP_CONFIG_BODY": "sip_port: 3333\n"}).sip_port == 3333


def test_our_own_keys(tmp_path: Path) -> None:
    body = f"api_port: 9999\nstorage:\n  path: {tmp_path}/s.json\nredis: {{address: 'r:6380', db: 2}}\n"
    config = parse_config(body, {})
    assert config.api_port == 9999
    assert config.storage_path == tmp_path / "s.json"
    assert config.redis is not None and (config.redis.port, config.redis.db) == (6380, 2)


def test_room_transport_is_lean_unless_the_sdk_is_asked_for() -> None:
    assert parse_config(None, {}).room_transport == "lean"
    assert parse_config("room_transport: sdk\n", {}).room_transport == "sdk"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10000-20000", PortRange(10000, 20000)),
        (15000, PortRange(15000, 15000)),
        ({"start": 1, "end": 2}, PortRange(1, 2)),
    ],
)
def test_rtp_port_forms(value: object, expected: PortRange) -> None:
    body = f"rtp_port: {value}\n" if not isinstance(value, dict) else "rtp_port: {start: 1, end: 2}\n"
    assert parse_config(body, {}).rtp_port == expected


@pytest.mark.parametrize(
    ("body", "env", "key"),
    [
        ("rtp_port: 20000-10000\n", {}, "rtp_port: range 20000-10000 is empty"),
        ("rtp_port: lots\n", {}, "rtp_port:"),
        ("rtp_port: 10000-70000\n", {}, "rtp_port:"),
        ("api_key: k\nws_url: ws://lk\n", {}, "api_secret: missing"),
        ("api_secret: s\nws_url: ws://lk\n", {}, "api_key: missing"),
        ("ws_url: ws://lk\n", {}, "api_key: missing"),
        ("sip_port: 5060\n  bad: [\n", {}, "config: invalid YAML at line 2"),
        ("- a\n- b\n", {}, "config: the top level must be a mapping"),
        ("sip_port: 70000\n", {}, "sip_port:"),
        ("sip_port: '5060'\n", {}, "sip_port:"),
        ("health_port: -1\n", {}, "health_port:"),
        ("use_external_ip: yes please\n", {}, "use_external_ip:"),
        ("use_external_ip: true\nnat_1_to_1_ip: 1.2.3.4\n", {}, "nat_1_to_1_ip: use_external_ip and"),
        ("nat_1_to_1_ip: not-an-ip\n", {}, "nat_1_to_1_ip:"),
        ("media_use_external_ip: true\nmedia_nat_1_to_1_ip: 1.2.3.4\n", {}, "media_nat_1_to_1_ip: media_use"),
        ("media_nat_1_to_1_ip: 1.2.3\n", {}, "media_nat_1_to_1_ip: '1.2.3' is not an IP address"),
        ("redis: {}\n", {}, "redis.address: missing"),
        ("redis: localhost\n", {}, "redis:"),
        ("redis: {address: 'a:1', sentinel_addresses: [x]}\n", {}, "redis.sentinel_addresses:"),
        ("logging: {level: loud}\n", {}, "logging.level:"),
        ("codecs: {PCMU: maybe}\n", {}, "codecs:"),
        ("max_active_calls: -5\n", {}, "max_active_calls:"),
        ("room_transport: aiortc\n", {}, "room_transport: 'aiortc' is not one of lean, sdk"),
        ("ws_url: localhost:7880\napi_key: k\napi_secret: s\n", {}, "ws_url:"),
    ],
)
def test_invalid_configuration_names_the_key(body: str, env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(body, env)
    message = str(error.value)
    assert message.startswith(key), message
    assert "\n" not in message


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope\.yaml"):
        load_config(str(tmp_path / "nope.yaml"), {})


def test_go_keys_are_acted_on_or_kept_with_a_reason() -> None:
    body = GO_COMPOSE_BODY + (
        "media_timeout: 20s\nmedia_timeout_initial: 1m\nsip_ringing_interval: 2500ms\njaeger_url: http://j\n"
        "max_cpu_utilization: 0.75\nsip_trunk_ids: [ST_a]\nlocal_net: 192.168.1.7/24\n"
        "log_level: debug\nlogging: {component_levels: {sip: debug}}\ntypo_key: 1\n"
    )
    config = parse_config(body, {})
    assert (config.media_timeout, config.media_timeout_initial, config.sip_ringing_interval) == (20.0, 60.0, 2.5)
    assert (config.max_cpu_utilization, config.sip_trunk_ids) == (0.75, ("ST_a",))
    assert (config.local_net, config.log_level, config.log_component_levels) == (
        "192.168.1.0/24", "debug", {"sip": "debug"},
    )  # fmt: skip
    assert config.ignored_keys == ("jaeger_url", "typo_key")
    assert "jaeger_url" in NO_EFFECT and "typo_key" not in NO_EFFECT  # start-up reports the latter as unknown


@pytest.mark.parametrize(
    ("text", "seconds"), [("15s", 15.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), (2_000_000_000, 2.0)]
)
def test_durations_are_read_as_go_reads_them(text: object, seconds: float) -> None:
    assert parse_config(GO_COMPOSE_BODY + f"media_timeout: {text}\n", {}).media_timeout == seconds


def test_every_go_key_without_effect_is_in_the_configuration_docs() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    for key, (_, reason) in NO_EFFECT.items():
        assert f"`{key}`" in docs and reason in docs, key


def test_tls_block_as_in_the_go_service(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("x")
    key.write_text("x")
    body = f"tls:\n  port: 5061\n  port_listen: 15061\n  certs:\n    - cert_file: {cert}\n      key_file: {key}\n"
    tls = parse_config(body, {}).tls
    assert tls is not None and (tls.port, tls.port_listen, tls.cert_file) == (5061, 15061, str(cert))
    with pytest.raises(ConfigError, match=r"^tls\.certs\[0\]\.key_file: .* is not a readable file"):
        parse_config(f"tls:\n  certs:\n    - cert_file: {cert}\n      key_file: {tmp_path}/none.pem\n", {})
    with pytest.raises(ConfigError, match=r"^tls\.certs: needs at least one"):
        parse_config("tls:\n  port: 5061\n", {})


def test_dns_block() -> None:
    dns = parse_config("dns:\n  nameservers: ['192.0.2.53', '192.0.2.54:5353', '[2001:db8::53]:53']\n", {}).dns
    assert dns.nameservers == (("192.0.2.53", 53), ("192.0.2.54", 5353), ("2001:db8::53", 53))
    assert dns.failover_timeout == 4.0
    with pytest.raises(ConfigError, match=r"^dns\.nameservers: 'dns\.example' is not an IP address"):
        parse_config("dns:\n  nameservers: [dns.example]\n", {})
    with pytest.raises(ConfigError, match=r"^dns\.failover_timeout: "):
        parse_config("dns:\n  failover_timeout: 0\n", {})


def test_tls_client_certificates(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    body = (
        f"tls:\n  certs: [{{cert_file: {cert}, key_file: {key}}}]\n  ca_file: {cert}\n  verify_clients: {cert}\n"
        f"  client_certs:\n    - {{cert_file: {cert}, key_file: {key}}}\n"
        f"    - {{cert_file: {key}, key_file: {key}, trunks: [ST_a]}}\n"
    )
    tls = parse_config(body, {}).tls
    assert tls is not None and tls.verify_clients == str(cert) and tls.ca_file == str(cert)
    assert tls.default_client_cert == (str(cert), str(key))
    assert tls.client_cert_for("ST_a") == (str(key), str(key))
    assert tls.client_cert_for("ST_b") is None
    with pytest.raises(ConfigError, match=r"^tls\.client_certs\[0\]: needs cert_file and key_file"):
        parse_config(f"tls:\n  certs: [{{cert_file: {cert}, key_file: {key}}}]\n  client_certs: [{{}}]\n", {})


def test_registrations_and_websocket_blocks() -> None:
    body = (
        "registrations:\n  - {registrar: 'sip:pbx.example.com:5080;transport=tcp', username: '1001', password: x,"
        " trunk: ST_1, expires: 120}\nwebsocket:\n  port: 5066\n"
    )
    config = parse_config(body, {})
    (registration,) = config.registrations
    assert (registration.name, registration.expires, registration.trunk) == ("1001@pbx.example.com", 120, "ST_1")
    assert config.websocket.port == 5066 and config.websocket.tls_port is None
    with pytest.raises(ConfigError, match=r"^registrations\[0\]\.registrar: 'tel:\+1' is not a sip: or sips: URI"):
        parse_config("registrations:\n  - {registrar: 'tel:+1', username: a}\n", {})
    with pytest.raises(ConfigError, match=r"^registrations\[0\]\.username: missing"):
        parse_config("registrations:\n  - {registrar: 'sip:pbx.example.com'}\n", {})
    with pytest.raises(ConfigError, match=r"^websocket\.tls_port: wss needs"):
        parse_config("websocket:\n  tls_port: 5067\n", {})


def test_routing_keys_with_the_go_meanings() -> None:
    body = GO_COMPOSE_BODY + (
        "sip_hostname: ${IP}.sip.example.com\nadd_record_route: true\naudio_dtmf: true\n"
        "outbound_route_headers: ['<sip:proxy.example.net:5060;transport=tcp;lr>']\n"
    )
    config = parse_config(body, {})
    assert (config.sip_hostname, config.add_record_route, config.audio_dtmf) == ("${IP}.sip.example.com", True, True)
    assert config.outbound_route_headers == ("<sip:proxy.example.net:5060;transport=tcp;lr>",)
    assert config.ignored_keys == ()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("sip_hostname: sip.example.com:5061", r"^sip_hostname: invalid hostname 'sip\.example\.com:5061'"),
        ("sip_hostname: ${NODE}.example.com", r"^sip_hostname: invalid hostname '\$\{NODE\}\.example\.com'"),
        ("outbound_route_headers: '<sip:p;lr>'", r"^outbound_route_headers: must be a list"),
        ("outbound_route_headers: ['<tel:+1>']", r"^outbound_route_headers\[0\]: '<tel:\+1>' does not name a sip"),
        ("add_record_route: 1", r"^add_record_route: must be true or false"),
    ],
)
def test_routing_keys_are_checked(line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(line + "\n", {})


def test_tls_policy_keys(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    block = f"tls:\n  certs: [{{cert_file: {cert}, key_file: {cert}}}]\n"
    body = block + (
        "  min_version: tls1.2\n  max_version: tls1.3\n  alpn: []\n"
        f"  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n  key_log: {tmp_path}/keys.log\n"
    )
    tls = parse_config(body, {}).tls
    assert tls is not None
    assert (tls.policy.ciphers, tls.policy.alpn, tls.policy.key_log) == (
        "ECDHE-RSA-AES128-GCM-SHA256", (), f"{tmp_path}/keys.log",
    )  # fmt: skip
    default = parse_config(block, {}).tls
    assert default is not None and default.policy.alpn == ("sip",)
    for extra, message in (
        ("  cipher_suites: [TLS_RSA_WITH_3DES_EDE_CBC_SHA, BOGUS]\n", r"^tls\.cipher_suites: unknown .* BOGUS"),
        ("  cipher_suites: [TLS_RSA_WITH_3DES_EDE_CBC_SHA]\n", r"^tls\.cipher_suites: insecure cipher suite"),
        ("  min_version: tls9\n", r"^tls\.min_version: unknown TLS version 'tls9'"),
        ("  alpn: sip\n", r"^tls\.alpn: must be a list"),
        (f"  key_log: {tmp_path}/none/keys.log\n", r"^tls\.key_log: .*its directory does not exist"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_config(block + extra, {})
    assert parse_config(block + "  min_versoin: tls1.2\n", {}).ignored_keys == ("tls.min_versoin",)
