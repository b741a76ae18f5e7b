"""The ``tls`` block's versions, cipher suites, ALPN and key log: read with the Go service's names and meanings,
and set on Python ssl contexts (the handshakes themselves are tested against openssl in tests/integration)."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest

from sipbridge.sip.tls_policy import SECURE_SUITES, TlsPolicy, TlsPolicyError, parse_tls_policy


def test_nothing_set_means_go_defaults_alpn_sip() -> None:
    assert parse_tls_policy() == TlsPolicy(None, None, None, ("sip",), None)
    assert parse_tls_policy(alpn=[]).alpn == ()  # an empty list turns ALPN off, as in Go
    assert parse_tls_policy(alpn=["sip", "x-foo"]).alpn == ("sip", "x-foo")


def test_versions_by_their_go_names() -> None:
    policy = parse_tls_policy(min_version="tls1.2", max_version="TLS1.3")
    assert (policy.min_version, policy.max_version) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    with pytest.raises(TlsPolicyError, match=r"^tls\.min_version: unknown TLS version 'ssl3'"):
        parse_tls_policy(min_version="ssl3")
    with pytest.raises(TlsPolicyError, match=r"^tls\.min_version: tls1\.3 is above tls\.max_version tls1\.2"):
        parse_tls_policy(min_version="tls1.3", max_version="tls1.2")


def test_cipher_suites_by_iana_name_become_openssl_names() -> None:
    policy = parse_tls_policy(
        cipher_suites=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256",
                       "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"]
    )  # fmt: skip
    assert policy.ciphers == "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305"
    assert policy.min_version is None
    # Every name of Go's secure list is one OpenSSL knows under the mapped name.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for iana, openssl in SECURE_SUITES.items():
        context.set_ciphers(openssl)
        assert {c["name"] for c in context.get_ciphers() if c["protocol"] != "TLSv1.3"} == {openssl}, iana


def test_unknown_and_insecure_suites_are_refused_by_name() -> None:
    with pytest.raises(TlsPolicyError, match=r"^tls\.cipher_suites: unknown cipher suite ECDHE-RSA-AES128-SHA, NOPE$"):
        parse_tls_policy(cipher_suites=["ECDHE-RSA-AES128-SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "NOPE"])
    with pytest.raises(TlsPolicyError, match=r"^tls\.cipher_suites: insecure .*TLS_RSA_WITH_RC4_128_SHA refused"):
        parse_tls_policy(cipher_suites=["TLS_RSA_WITH_RC4_128_SHA"])


def test_only_tls13_suites_leave_tls13_alone() -> None:
    assert parse_tls_policy(cipher_suites=["TLS_AES_256_GCM_SHA384"]).min_version == ssl.TLSVersion.TLSv1_3
    with pytest.raises(TlsPolicyError, match=r"^tls\.cipher_suites: only TLS 1\.3 suites"):
        parse_tls_policy(cipher_suites=["TLS_AES_256_GCM_SHA384"], max_version="tls1.2")


def test_applied_to_a_context(tmp_path: Path) -> None:
    key_log = tmp_path / "keys.log"
    policy = parse_tls_policy(
        min_version="tls1.2", max_version="tls1.2", cipher_suites=["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"],
        key_log=str(key_log),
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    policy.apply(context)
    assert (context.minimum_version, context.maximum_version) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    assert [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"] == ["ECDHE-RSA-AES256-GCM-SHA384"]
    assert context.keylog_filename == str(key_log)
    assert stat.S_IMODE(key_log.stat().st_mode) == 0o600  # secrets: as private as the Go service makes the file


def test_tls_1_0_asks_openssl_for_its_lowest_security_level() -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    parse_tls_policy(min_version="tls1.0").apply(context)
    assert context.minimum_version == ssl.TLSVersion.TLSv1
    assert context.security_level == 0  # OpenSSL 3 refuses TLS 1.0/1.1 at any higher level
