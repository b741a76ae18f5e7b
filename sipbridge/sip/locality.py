"""Where we are, as each peer sees us: our Via and Contact towards it, and which stream connections are open.

The user agent owns the one ``Locality`` and tells it what the edge reports about connections; calls read it
(it is their ``CallEnvironment``).
"""

from __future__ import annotations

from .headers import Via
from .settings import SipSettings
from .transaction import Address, new_branch
from .uri import format_host

IP_PLACEHOLDER = "${IP}"
HOSTNAME_FORBIDDEN = "$%{}[]:/| "
"""Characters ``sip_hostname`` may not hold once ``${IP}`` is replaced (the Go service refuses them too)."""


def contact_hostname(template: str, ip: str) -> str:
    """``sip_hostname`` with ``${IP}`` replaced by ``ip``, dots and colons as dashes (``10-0-0-1.sip.example``):
    a name a wildcard DNS record can answer for every node. ValueError when the result is no host name."""
    name = template.replace(IP_PLACEHOLDER, ip.strip("[]").replace(".", "-").replace(":", "-"))
    if any(c in HOSTNAME_FORBIDDEN for c in name):
        raise ValueError(f"invalid hostname {name!r}")
    return name


class Locality:
    def __init__(self, settings: SipSettings, *, local_host: str, local_host_v6: str | None = None) -> None:
        """``local_host``: the address put in Via/Contact (``advertised_host`` wins); ``local_host_v6`` is used
        instead towards IPv6 peers on a dual-stack node."""
        self.settings = settings
        self.host = settings.advertised_host or local_host
        self.host_v6 = settings.advertised_host_v6 or local_host_v6
        self.tls_hostname = contact_hostname(settings.sip_hostname, self.host) if settings.sip_hostname else ""
        """Our host in Contacts towards TLS peers (``sip_hostname``: a certificate names a host, not an IP)."""
        self._connections: set[Address] = set()

    def contact(self, peer: Address, *, user: str = "sipbridge", params: str = "") -> str:
        """Our Contact towards ``peer``: its transport, and our address of its IP family (``params``: more URI
        parameters, e.g. a registration's token)."""
        return f"<{self._uri(peer, f'{user}@')}{params}>"

    def record_route(self, peer: Address) -> str:
        """A Record-Route naming this node as a loose router, so in-dialog requests come back here
        (``add_record_route``): our Contact's address, without the user, its transport always named (as
        livekit/sip writes it)."""
        return f"<{self._uri(peer, '', name_udp=True)};lr>"

    def _uri(self, peer: Address, userinfo: str, *, name_udp: bool = False) -> str:
        port = self._port_for(peer.transport)
        named = name_udp or peer.transport != "UDP"
        transport = f";transport={peer.transport.lower()}" if named else ""
        host = self.tls_hostname if peer.transport == "TLS" and self.tls_hostname else self._host_towards(peer)
        return f"sip:{userinfo}{format_host(host)}:{port}{transport}"

    @property
    def user_agent(self) -> str:
        return self.settings.user_agent

    def via(self, peer: Address) -> str:
        port = self._port_for(peer.transport)
        return str(Via(peer.transport, self._host_towards(peer), port, {"branch": new_branch(), "rport": None}))

    def is_connected(self, peer: Address) -> bool:
        return peer in self._connections

    def connection_made(self, peer: Address) -> None:
        self._connections.add(peer)

    def connection_lost(self, peer: Address) -> None:
        self._connections.discard(peer)

    def _port_for(self, transport: str) -> int:
        """Our listening port for a transport; without a TLS listener, TLS replies come back on the connection."""
        if transport == "TLS" and self.settings.tls_port is not None:
            return self.settings.advertised_tls_port or self.settings.tls_port
        if transport == "WS" and self.settings.ws_port is not None:
            return self.settings.ws_port
        if transport == "WSS" and self.settings.wss_port is not None:
            return self.settings.wss_port
        return self.settings.advertised_port or self.settings.port

    def _host_towards(self, peer: Address) -> str:
        return self.host_v6 if self.host_v6 and ":" in peer.host else self.host
