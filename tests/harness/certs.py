"""A throw-away PKI for TLS tests, made with the openssl command: one CA, and certificates it signs for servers
(with the names and addresses they answer to) and clients."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


class TestPki:
    __test__ = False  # not a pytest class

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.ca = Cert(directory / "ca.pem", directory / "ca.key")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-days", "2", "-subj", "/CN=sipbridge test CA", "-keyout", self.ca.key, "-out", self.ca.cert,
                 cwd=directory)  # fmt: skip

    def issue(self, name: str, *, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> Cert:
        """A certificate for CN ``name`` (and these subject alternative names), signed by the CA."""
        issued = Cert(self.dir / f"{name}.pem", self.dir / f"{name}.key")
        csr = self.dir / f"{name}.csr"
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
                 f"/CN={name}", "-keyout", issued.key, "-out", csr, cwd=self.dir)  # fmt: skip
        names = [f"DNS:{n}" for n in dns] + [f"IP:{ip}" for ip in ips]
        extensions = self.dir / f"{name}.ext"
        extensions.write_text(f"subjectAltName={','.join(names)}\n" if names else "basicConstraints=CA:FALSE\n")
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca.cert, "-CAkey", self.ca.key, "-CAcreateserial",
                 "-days", "2", "-out", issued.cert, "-extfile", extensions, cwd=self.dir)  # fmt: skip
        return issued
