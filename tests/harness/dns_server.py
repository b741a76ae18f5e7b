"""A real DNS server for RFC 3263 tests: Debian's dnsmasq on a free loopback port, serving only the records a test
gives it (no upstream, no /etc/hosts)."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Self

from .binaries import require_binary
from .ports import LOOPBACK, free_tcp_udp_port
from .processes import ManagedProcess, udp_bound


class DnsServer:
    """dnsmasq answering for the names in `records`: each item is one dnsmasq option without its dashes, e.g.
    ``naptr-record=carrier.test,10,10,"s","SIP+D2U","",_sip._udp.carrier.test``,
    ``srv-host=_sip._udp.carrier.test,a.carrier.test,5060,10,100`` or ``host-record=a.carrier.test,127.0.0.1``."""

    def __init__(self, workdir: Path, records: list[str]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_tcp_udp_port()
        config = workdir / "dnsmasq.conf"
        config.write_text("".join(f"{record}\n" for record in records))
        argv = [
            require_binary("dnsmasq"), "--keep-in-foreground", "--log-facility=-", "--log-queries",
            f"--conf-file={config}", "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
            f"--listen-address={LOOPBACK}", f"--port={self.port}", "--user=root", "--pid-file=",
        ]  # fmt: skip
        self.process = ManagedProcess("dnsmasq", argv, workdir / "dnsmasq.log")

    @property
    def nameserver(self) -> str:
        """What goes in the bridge's ``dns.nameservers``."""
        return f"{LOOPBACK}:{self.port}"

    def queries(self, name: str) -> list[str]:
        return self.process.grep_log(f"query\\[\\w+\\] {name}")

    def __enter__(self) -> Self:
        self.process.start_and_wait(udp_bound(LOOPBACK, self.port), what="listening")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.process.stop()
