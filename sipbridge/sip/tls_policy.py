"""The TLS knobs of the Go service's ``tls`` block (versions, cipher suites, ALPN, key log) as Python's ssl takes them.

config.yaml names versions ``tls1.0``..``tls1.3`` and cipher suites by their IANA names, as Go's crypto/tls does;
OpenSSL knows the suites by other names, hence the table. The same policy goes on our TLS listener and on the
contexts of the TLS connections we open, as the Go service uses one TLS configuration for both.
"""

from __future__ import annotations

import os
import ssl
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

TLS_VERSIONS = {
    "tls1.0": ssl.TLSVersion.TLSv1,
    "tls1.1": ssl.TLSVersion.TLSv1_1,
    "tls1.2": ssl.TLSVersion.TLSv1_2,
    "tls1.3": ssl.TLSVersion.TLSv1_3,
}

TLS13_SUITES = frozenset({"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"})
"""Go accepts these names but, like OpenSSL through Python, does not let TLS 1.3's suites be chosen."""

SECURE_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
"""Go's ``tls.CipherSuites()`` for TLS 1.0-1.2, IANA name → OpenSSL name."""

INSECURE_SUITES = frozenset(
    {
        "TLS_RSA_WITH_RC4_128_SHA",
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        "TLS_RSA_WITH_AES_256_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA256",
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    }
)
"""Go's ``tls.InsecureCipherSuites()``: refused here (Go takes them with a warning; OpenSSL 3 no longer offers
RC4 or 3DES at all, so accepting them would promise what the handshake cannot keep)."""

DEFAULT_ALPN = ("sip",)


class TlsPolicyError(ValueError):
    """A ``tls`` setting that cannot be honoured; the message starts with the key (``tls.min_version: ...``)."""


@dataclass(frozen=True)
class TlsPolicy:
    min_version: ssl.TLSVersion | None = None
    max_version: ssl.TLSVersion | None = None
    ciphers: str | None = None
    """An OpenSSL cipher string for TLS 1.0-1.2; None keeps OpenSSL's defaults."""
    alpn: tuple[str, ...] = DEFAULT_ALPN
    """Offered (client) and accepted (server) ALPN protocols; empty turns ALPN off."""
    key_log: str | None = None
    """NSS key log file that every handshake's secrets are appended to (for Wireshark)."""

    def apply(self, context: ssl.SSLContext, *, alpn: bool = True) -> None:
        """Set this policy on ``context``; ``alpn=False`` for contexts speaking another protocol (wss: HTTP)."""
        with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated in ssl; an operator asked for them
            warnings.simplefilter("ignore", DeprecationWarning)
            if self.min_version is not None:
                context.minimum_version = self.min_version
            if self.max_version is not None:
                context.maximum_version = self.max_version
        ciphers = self.ciphers
        if self.min_version is not None and self.min_version < ssl.TLSVersion.TLSv1_2:
            # OpenSSL 3 allows TLS 1.0/1.1 (SHA-1 signatures) only at security level 0.
            ciphers = f"{ciphers or 'DEFAULT'}:@SECLEVEL=0"
        if ciphers is not None:
            context.set_ciphers(ciphers)
        if alpn and self.alpn:
            context.set_alpn_protocols(list(self.alpn))
        if self.key_log is not None:
            os.close(os.open(self.key_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))  # as private as Go's
            context.keylog_filename = self.key_log


def parse_tls_policy(
    *,
    min_version: str = "",
    max_version: str = "",
    cipher_suites: Sequence[str] = (),
    alpn: Sequence[str] | None = None,
    key_log: str = "",
) -> TlsPolicy:
    """The policy for config.yaml's values; ``alpn`` None (not set) means Go's default ``["sip"]``."""
    low = _version("tls.min_version", min_version)
    high = _version("tls.max_version", max_version)
    if low is not None and high is not None and low > high:
        raise TlsPolicyError(f"tls.min_version: {min_version} is above tls.max_version {max_version}")
    known = SECURE_SUITES.keys() | TLS13_SUITES | INSECURE_SUITES
    unknown = [s for s in cipher_suites if s not in known]
    if unknown:
        raise TlsPolicyError(f"tls.cipher_suites: unknown cipher suite {', '.join(unknown)}")
    insecure = [s for s in cipher_suites if s in INSECURE_SUITES]
    if insecure:
        raise TlsPolicyError(f"tls.cipher_suites: insecure cipher suite {', '.join(insecure)} refused")
    ciphers = None
    if cipher_suites:
        chosen = [SECURE_SUITES[s] for s in cipher_suites if s in SECURE_SUITES]
        if chosen:
            ciphers = ":".join(dict.fromkeys(chosen))
        else:  # only TLS 1.3 names: no suite is left for TLS 1.2 and below, as in Go
            if high is not None and high < ssl.TLSVersion.TLSv1_3:
                raise TlsPolicyError(
                    f"tls.cipher_suites: only TLS 1.3 suites are listed, which tls.max_version {max_version} excludes"
                )
            low = ssl.TLSVersion.TLSv1_3
    protocols = DEFAULT_ALPN if alpn is None else tuple(alpn)
    bad = [p for p in protocols if not p or len(p.encode()) > 255]
    if bad:
        raise TlsPolicyError(f"tls.alpn: {bad[0]!r} is not an ALPN protocol name (1 to 255 bytes)")
    return TlsPolicy(low, high, ciphers, protocols, key_log or None)


def _version(key: str, text: str) -> ssl.TLSVersion | None:
    if not text:
        return None
    version = TLS_VERSIONS.get(text.lower())
    if version is None:
        raise TlsPolicyError(f"{key}: unknown TLS version {text!r} (tls1.0, tls1.1, tls1.2 or tls1.3)")
    return version
