"""Address helpers shared by the SIP and media layers (a leaf: it imports nothing of sipbridge)."""

from __future__ import annotations

import functools
import ipaddress


@functools.lru_cache(maxsize=1024)
def is_ip(host: str) -> bool:
    """Whether ``host`` is an IP address (a host name must be resolved before a packet can go to it)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
