"""Prometheus gauges of a node's load: calls in progress, RTP ports held, asyncio tasks alive.

The last two make leaks visible: after every call has ended, ports and tasks return to their idle values.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Gauge

from sipbridge.calls.capacity import Capacity
from sipbridge.media.ports import PortAllocator
from sipbridge.sip import Endpoint

ACTIVE_CALLS = Gauge("sipbridge_active_calls", "Calls in progress on this node")
RTP_PORTS_IN_USE = Gauge("sipbridge_rtp_ports_in_use", "RTP ports allocated to calls")
ASYNCIO_TASKS = Gauge("sipbridge_asyncio_tasks", "asyncio tasks alive in the bridge process")
SIP_MALFORMED = Gauge("sipbridge_sip_malformed_messages", "SIP messages received that did not parse, since start")
REGISTERED = Gauge("sipbridge_registration_registered", "1 while an outbound registration holds", ["registration"])
REGISTRATION_STATUS = Gauge(
    "sipbridge_registration_last_status", "The last final response to a registration's REGISTER", ["registration"]
)


def registration_changed(name: str, registered: bool, status: int | None) -> None:
    REGISTERED.labels(registration=name).set(1 if registered else 0)
    REGISTRATION_STATUS.labels(registration=name).set(status or 0)


def watch(capacity: Capacity, ports: PortAllocator, endpoint: Endpoint, loop: asyncio.AbstractEventLoop) -> None:
    """Read the gauges from the live objects whenever /metrics is scraped."""
    SIP_MALFORMED.set_function(lambda: endpoint.ua.parse_errors if endpoint.ua is not None else 0)
    ACTIVE_CALLS.set_function(lambda: len(capacity.active))
    RTP_PORTS_IN_USE.set_function(lambda: ports.in_use)
    ASYNCIO_TASKS.set_function(lambda: len(asyncio.all_tasks(loop)))
