"""The inspector of a running node: its trace book fed by the SIP endpoint, the call metrics, the HEP export and
the web page, started and stopped with the bridge.
"""

from __future__ import annotations

import logging

from aiohttp import web

from sipbridge.config import InspectorSettings
from sipbridge.inspector import metrics
from sipbridge.inspector.book import TraceBook
from sipbridge.inspector.hep import HepExporter
from sipbridge.inspector.web import InspectorApp
from sipbridge.sip import Endpoint

log = logging.getLogger("sipbridge.inspector")


class Inspector:
    def __init__(self, settings: InspectorSettings, api_key: str, api_secret: str) -> None:
        self.settings = settings
        self.book = TraceBook(settings)
        self.book.end_listeners.append(metrics.call_ended)
        self._app = InspectorApp(self.book, api_key, api_secret)
        self._runner: web.AppRunner | None = None
        self._hep: HepExporter | None = None
        self.port = settings.port
        """Where the page listens (the one the OS chose when ``inspector_port`` asks for any)."""

    async def start(self, endpoint: Endpoint) -> None:
        """Trace what ``endpoint`` sends and receives; export and serve as configured."""
        settings = self.settings

        def local_address(transport: str) -> tuple[str, int]:
            tls_port = endpoint.settings.tls_port
            return endpoint.local_host, tls_port if transport == "TLS" and tls_port else endpoint.port

        self.book.local_address = local_address
        endpoint.tap = self.book.record
        metrics.watch_low_quality(self.book.active)
        if settings.hep is not None:
            self._hep = HepExporter(settings.hep, settings.hep_capture_id, settings.hep_password)
            await self._hep.start()
            self.book.message_listeners.append(self._hep)
            log.info("inspector: HEP v3 to %s:%d (capture ID %d)", settings.hep.host, settings.hep.port,
                     settings.hep_capture_id)  # fmt: skip
        if settings.port:
            self._runner = web.AppRunner(self._app.application(), access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, settings.listen_ip, settings.port)
            await site.start()
            self.port = self._runner.addresses[0][1]
            log.info("inspector: http://%s:%d/ (SIP admin token needed)", settings.listen_ip, self.port)

    async def close(self) -> None:
        if self._hep is not None:
            self._hep.close()
        if self._runner is not None:
            await self._runner.cleanup()
