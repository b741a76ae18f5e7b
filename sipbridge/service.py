"""The running bridge: store, SIP API, health and metrics endpoints, and (on the dev default) a local LiveKit server.

`Bridge.start` brings the parts up in dependency order and reports what listens where; `Bridge.stop` takes them
down in reverse, marking the node as draining first so health checks stop sending work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dispatch.decide import OPEN_CONFIGURATION_WARNING, is_open_configuration
from sipbridge import metrics
from sipbridge.api.auth import Authenticator
from sipbridge.api.sip_service import SIPService
from sipbridge.calls.control import CallControl
from sipbridge.calls.inbound import inbound_handler
from sipbridge.calls.services import CallServices
from sipbridge.config import DEV_API_KEY, DEV_API_SECRET, Config, ConfigError, is_go_service_key
from sipbridge.devserver import DevLiveKitServer
from sipbridge.health import Health, State
from sipbridge.media.ports import PortAllocator
from sipbridge.room import LiveKitCredentials
from sipbridge.sip import Endpoint, SipSettings
from sipbridge.sip.settings import codecs_from_config
from sipbridge.store import SIPStore, open_store, store_description

log = logging.getLogger("sipbridge")


class Bridge:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.health = Health()
        self.store: SIPStore | None = None
        self._runners: list[web.AppRunner] = []
        self._devserver: DevLiveKitServer | None = None
        self.endpoint: Endpoint | None = None
        self.calls: CallServices | None = None
        self.api: SIPService | None = None
        self.control: CallControl | None = None

    def _bind_host(self) -> str:
        return self.config.listen_ip or "0.0.0.0"

    async def _serve(self, app: web.Application, port: int) -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        await web.TCPSite(runner, self._bind_host(), port).start()

    async def start(self) -> None:
        config = self.config
        if config.api_port is None:
            raise ConfigError(
                "api_port: not set, and cluster mode (serving livekit-server over psrpc on Redis) is not available "
                "yet; set api_port to serve the SIP API from this node"
            )
        self._report_ignored_keys()
        if config.health_port:
            health_app = web.Application()
            self.health.add_routes(health_app)
            await self._serve(health_app, config.health_port)
            log.info("health: http://%s:%d/ (503 until ready)", self._bind_host(), config.health_port)

        if config.local_livekit:
            self._devserver = DevLiveKitServer(
                config.ws_url,
                config.api_key,
                config.api_secret,
                config.storage_path.parent / "livekit-server.log",
            )
            log.info("livekit: %s", await self._devserver.start())
        else:
            log.info("livekit: %s", config.ws_url)

        self.store = await open_store(config)
        log.info("storage: %s", store_description(config))
        if is_open_configuration(await self.store.list_inbound_trunks(), await self.store.list_dispatch_rules()):
            log.warning("dispatch: %s", OPEN_CONFIGURATION_WARNING)

        api_app = web.Application(client_max_size=1 << 20)
        self.api = SIPService(self.store, Authenticator(config.api_key, config.api_secret))
        self.api.twirp().add_routes(api_app)
        await self._serve(api_app, config.api_port)
        log.info(
            "SIP API: http://%s:%d/twirp/livekit.SIP/ (lk --url http://localhost:%d ...)",
            self._bind_host(),
            config.api_port,
            config.api_port,
        )

        if config.prometheus_port:
            metrics_app = web.Application()
            metrics_app.router.add_get("/metrics", _metrics)
            await self._serve(metrics_app, config.prometheus_port)
            log.info("metrics: http://%s:%d/metrics", self._bind_host(), config.prometheus_port)

        await self._start_sip(self.store)
        assert self.calls is not None and self.endpoint is not None
        self.control = CallControl(self.calls, self.endpoint)
        self.api.calls = self.control
        if (config.api_key, config.api_secret) == (DEV_API_KEY, DEV_API_SECRET):
            log.warning("using the development API key and secret (devkey/secret): do not expose this node")
        self.health.state = State.READY
        log.info("ready")

    async def _start_sip(self, store: SIPStore) -> None:
        """The SIP endpoint, handing each INVITE to an inbound call flow."""
        config = self.config
        settings = SipSettings(
            bind_host=self._bind_host(),
            port=config.sip_port_listen,
            advertised_port=config.sip_port if config.sip_port != config.sip_port_listen else None,
            advertised_host=config.nat_1_to_1_ip or None,
            use_external_ip=config.use_external_ip,
            hide_inbound_port=config.hide_inbound_port,
            codecs=codecs_from_config(config.codecs),
            tls_port=config.tls.port_listen if config.tls else None,
            tls_cert_file=config.tls.cert_file if config.tls else None,
            tls_key_file=config.tls.key_file if config.tls else None,
        )
        self.calls = CallServices(
            config=config,
            store=store,
            ports=PortAllocator(config.rtp_port.start, config.rtp_port.end),
            livekit=LiveKitCredentials(config.ws_url, config.api_key, config.api_secret),
            codecs=settings.codecs,
            rtp_bind_host=self._bind_host(),
            sdp_address="",
        )
        metrics.watch(self.calls, asyncio.get_running_loop())
        self.endpoint = Endpoint(settings, inbound_handler(self.calls))
        await self.endpoint.start()
        self.calls.sdp_address = self.endpoint.local_host
        tls = f", TLS on {settings.tls_port}" if settings.tls_port else ""
        log.info(
            "SIP: %s on %s:%d%s (advertised %s), RTP ports %s",
            "/".join(settings.transports), self._bind_host(), self.endpoint.port, tls, self.endpoint.local_host,
            config.rtp_port,
        )  # fmt: skip

    def _report_ignored_keys(self) -> None:
        go_keys = [k for k in self.config.ignored_keys if is_go_service_key(k)]
        unknown = [k for k in self.config.ignored_keys if not is_go_service_key(k)]
        if go_keys:
            log.info("config: accepted but not acted on yet: %s", ", ".join(go_keys))
        if unknown:
            log.warning("config: unknown keys ignored: %s", ", ".join(unknown))

    async def stop(self) -> None:
        self.health.state = State.DRAINING
        if self.control is not None:
            await self.control.close()
            self.control = None
        if self.endpoint is not None:
            await self.endpoint.close()
            self.endpoint = None
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self.store is not None:
            await self.store.close()
            self.store = None
        if self._devserver is not None:
            await self._devserver.stop()
            self._devserver = None


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def run(config: Config) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly."""
    bridge = Bridge(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await bridge.start()
        await stop.wait()
        log.info("stopping")
    finally:
        with contextlib.suppress(Exception):
            await bridge.stop()
