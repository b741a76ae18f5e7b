"""Prometheus gauges of a node's load: calls in progress, RTP ports held, asyncio tasks alive.

The last two make leaks visible: after every call has ended, ports and tasks return to their idle values.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Gauge

from sipbridge.calls.services import CallServices

ACTIVE_CALLS = Gauge("sipbridge_active_calls", "Calls in progress on this node")
RTP_PORTS_IN_USE = Gauge("sipbridge_rtp_ports_in_use", "RTP ports allocated to calls")
ASYNCIO_TASKS = Gauge("sipbridge_asyncio_tasks", "asyncio tasks alive in the bridge process")


def watch(services: CallServices, loop: asyncio.AbstractEventLoop) -> None:
    """Read the gauges from the live objects whenever /metrics is scraped."""
    ACTIVE_CALLS.set_function(lambda: len(services.active))
    RTP_PORTS_IN_USE.set_function(lambda: services.ports.in_use)
    ASYNCIO_TASKS.set_function(lambda: len(asyncio.all_tasks(loop)))
