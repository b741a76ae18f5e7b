"""The Go service's own sample configurations load here with every key acted on, and a configuration setting every
key the Go service defines leaves out only those with a documented reason to (sipbridge.go_keys), none unknown."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config import GO_COMPOSE_BODY

from sipbridge.config import parse_config
from sipbridge.go_keys import NO_EFFECT

# github.com/livekit/sip: README.md ("Running the service"), docker-compose.yaml's SIP_CONFIG_BODY, and
# docs.livekit.io's self-hosting page (the same keys as the compose file, as config.yaml).
GO_SAMPLES = {
    "README": """
log_level: debug
api_key: devkey
api_secret: secret
ws_url: ws://localhost:7880
redis:
  address: localhost:6379
""",
    "docker-compose": GO_COMPOSE_BODY,
    "self-hosting docs": """
api_key: devkey
api_secret: secret
ws_url: ws://localhost:7880
redis:
  address: localhost:6379
sip_port: 5060
rtp_port: 10000-20000
use_external_ip: true
logging:
  level: debug
""",
}

# Every yaml key of the Go service's Config (pkg/config/config.go, v1.11.0) and of the logger.Config its
# `logging` block is (livekit/protocol), each set to a value the Go service would take.
EVERY_GO_KEY = """
api_key: devkey
api_secret: secret
ws_url: ws://localhost:7880
redis: {{address: localhost:6379, username: u, password: p, db: 1}}
health_port: 8081
prometheus_port: 9091
pprof_port: 6060
sip_port: 5060
sip_port_listen: 15060
sip_hostname: ${{IP}}.sip.example.com
outbound_route_headers: ['<sip:proxy.example.net:5060;transport=tcp;lr>']
sip_ringing_interval: 2s
tcp: {{dial_port: 30000-30100}}
tls:
  port: 5061
  port_listen: 15061
  certs: [{{cert_file: {cert}, key_file: {key}}}]
  key_log: {tmp}/tls-keys.log
  min_version: tls1.2
  max_version: tls1.3
  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]
  alpn: [sip]
rtp_port: 10000-20000
logging:
  json: true
  level: info
  sample: true
  component_levels: {{sip: debug}}
  sample_initial: 100
  sample_interval: 100
  item_sample_seconds: 10
  item_sample_initial: 5
  item_sample_interval: 10
cluster_id: c1
max_cpu_utilization: 0.8
max_active_calls: 100
sip_trunk_ids: [ST_a]
use_external_ip: false
local_net: 10.0.0.0/8
nat_1_to_1_ip: 203.0.113.5
listen_ip: 0.0.0.0
udp_max_payload: 1400
media_use_external_ip: false
media_nat_1_to_1_ip: 203.0.113.6
media_timeout: 15s
media_timeout_initial: 30s
symmetric_rtp: true
rtp_draining_idle_timeout: 30s
rtp_draining_duration: 10m
ignore_local_addr_in_sdp: true
codecs: {{PCMU: true, G722: false}}
hide_inbound_port: true
disable_rejected_invite_cache: true
add_record_route: true
audio_dtmf: true
enable_jitter_buffer: true
enable_jitter_buffer_prob: 0.5
jaeger_url: http://jaeger:14268/api/traces
experimental: {{inbound_wait_ack: true}}
"""


@pytest.mark.parametrize("sample", sorted(GO_SAMPLES))
def test_the_go_services_samples_have_every_key_acted_on(sample: str) -> None:
    assert parse_config(GO_SAMPLES[sample], {}).ignored_keys == ()


def test_every_go_key_is_acted_on_or_has_a_documented_reason_not_to_be(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("x")
    key.write_text("x")
    config = parse_config(EVERY_GO_KEY.format(cert=cert, key=key, tmp=tmp_path), {})
    assert set(config.ignored_keys) <= NO_EFFECT.keys(), set(config.ignored_keys) - NO_EFFECT.keys()
    assert set(config.ignored_keys) == {
        "pprof_port", "tcp", "udp_max_payload", "rtp_draining_idle_timeout", "rtp_draining_duration",
        "disable_rejected_invite_cache", "enable_jitter_buffer", "enable_jitter_buffer_prob", "jaeger_url",
        "experimental", "logging.sample", "logging.sample_initial", "logging.sample_interval",
        "logging.item_sample_seconds", "logging.item_sample_initial", "logging.item_sample_interval",
    }  # fmt: skip
    assert (config.add_record_route, config.audio_dtmf, config.sip_hostname) == (True, True, "${IP}.sip.example.com")
    assert config.tls is not None and config.tls.policy.alpn == ("sip",)
