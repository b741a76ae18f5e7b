"""The running bridge: store, SIP API, health and metrics endpoints, and (on the dev default) a local LiveKit server.

`Bridge.start` brings the parts up in dependency order and reports what listens where; `Bridge.stop` takes them
down in reverse, marking the node as draining first so health checks stop sending work.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import signal

from aiohttp import web
from livekit.protocol.sip import SIPCallInfo
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dispatch.decide import OPEN_CONFIGURATION_WARNING, is_open_configuration
from sipbridge import go_keys, metrics
from sipbridge.api.auth import Authenticator
from sipbridge.api.sip_service import SIPService
from sipbridge.calls.capacity import Capacity
from sipbridge.calls.control import CallControl
from sipbridge.calls.deciders import Decider, LocalDecider
from sipbridge.calls.inbound import inbound_handler
from sipbridge.calls.nonces import MemoryNonceLedger, RedisNonceLedger
from sipbridge.calls.services import CallServices, StateReporter
from sipbridge.calls.wiring import room_participants, rtp_sessions
from sipbridge.cluster.io_decider import IOInfoDecider
from sipbridge.cluster.node import ClusterNode
from sipbridge.config import DEV_API_KEY, DEV_API_SECRET, Config
from sipbridge.cpu_load import CpuLoad
from sipbridge.devserver import DevLiveKitServer
from sipbridge.health import Health, State
from sipbridge.ids import NODE_PREFIX, new_id
from sipbridge.inspector.node import Inspector
from sipbridge.media.ports import PortAllocator
from sipbridge.psrpc import IOInfoClient, RedisBus
from sipbridge.psrpc.rpc import UpdateSIPCallStateRequest
from sipbridge.registrations import Registrations
from sipbridge.room import LiveKitCredentials
from sipbridge.sip import Endpoint, SipSettings
from sipbridge.sip.settings import codecs_from_config
from sipbridge.sip.stun import DEFAULT_STUN_SERVERS, discover_external_ip
from sipbridge.stats import Stats
from sipbridge.store import SIPStore, open_store, store_description
from sipbridge.store.redis_backend import redis_client

log = logging.getLogger("sipbridge")
UNREGISTER_WAIT = 5.0
"""Seconds shutdown waits for registrars to answer our un-REGISTER."""


class Bridge:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.health = Health()
        self.stats = Stats(new_id(NODE_PREFIX))
        """The Go service's metrics; ``node_id`` is this run's node ID, as the Go service makes one per start."""
        self.store: SIPStore | None = None
        self._runners: list[web.AppRunner] = []
        self._devserver: DevLiveKitServer | None = None
        self.endpoint: Endpoint | None = None
        self.calls: CallServices | None = None
        self.api: SIPService | None = None
        self.control: CallControl | None = None
        self.cluster: ClusterNode | None = None
        self._bus: RedisBus | None = None
        self._io: IOInfoClient | None = None
        self.registrations: Registrations | None = None
        self._cpu: CpuLoad | None = None
        self.inspector = Inspector(config.inspector, config.api_key, config.api_secret)

    def _bind_host(self) -> str:
        return self.config.listen_ip or "0.0.0.0"

    async def _serve(self, app: web.Application, port: int) -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        await web.TCPSite(runner, self._bind_host(), port).start()

    @property
    def cluster_mode(self) -> bool:
        """A node with Redis and no standalone API serves livekit-server over psrpc (docs/cluster.md)."""
        return self.config.redis is not None and self.config.api_port is None

    async def start(self) -> None:
        config = self.config
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
        if is_open_configuration(list(self.store.inbound_trunks()), list(self.store.dispatch_rules())):
            log.warning("dispatch: %s", OPEN_CONFIGURATION_WARNING)

        if config.prometheus_port:
            metrics_app = web.Application()
            metrics_app.router.add_get("/metrics", self._metrics)
            await self._serve(metrics_app, config.prometheus_port)
            log.info("metrics: http://%s:%d/metrics", self._bind_host(), config.prometheus_port)

        decider: Decider = LocalDecider(self.store)
        report: StateReporter | None = None
        if self.cluster_mode:
            assert config.redis is not None
            self._bus = RedisBus(redis_client(config.redis, socket_timeout=None))
            self._io = io = IOInfoClient(self._bus)
            await io.start()
            decider = IOInfoDecider(io, self.store)

            async def report(info: SIPCallInfo) -> None:
                await io.update_sip_call_state(UpdateSIPCallStateRequest(call_info=info))

        calls, endpoint = await self._start_sip(decider, report)
        self.control = CallControl(calls, endpoint)
        if config.api_port is not None:
            api_app = web.Application(client_max_size=config.api_max_body)
            auth = Authenticator(config.api_key, config.api_secret)
            self.api = SIPService(self.store, auth, calls=self.control, max_body=config.api_max_body)
            self.api.twirp().add_routes(api_app)
            await self._serve(api_app, config.api_port)
            log.info(
                "SIP API: http://%s:%d/twirp/livekit.SIP/ (lk --url http://localhost:%d ...)",
                self._bind_host(),
                config.api_port,
                config.api_port,
            )
        if self._bus is not None:
            self.cluster = ClusterNode(calls, self.control, self._bus)
            await self.cluster.start()
        if (config.api_key, config.api_secret) == (DEV_API_KEY, DEV_API_SECRET):
            log.warning("using the development API key and secret (devkey/secret): do not expose this node")
        self.health.state = State.READY
        # What start-up made (modules, configuration, the store's records) lives as long as the process: out of the
        # collector's way, so its full collections walk only what calls make.
        gc.collect()
        gc.freeze()
        log.info("ready")

    async def _start_sip(self, decider: Decider, report: StateReporter | None) -> tuple[CallServices, Endpoint]:
        """The SIP endpoint, then the call flows' services (which need the address it found), then the endpoint
        hands each INVITE to an inbound call flow."""
        config = self.config
        settings = SipSettings(
            bind_host=self._bind_host(),
            port=config.sip_port_listen,
            advertised_port=config.sip_port if config.sip_port != config.sip_port_listen else None,
            advertised_host=config.nat_1_to_1_ip or None,
            use_external_ip=config.use_external_ip,
            local_net=config.local_net,
            hide_inbound_port=config.hide_inbound_port,
            nonce_secret=hashlib.sha256(b"sipbridge digest nonces\0" + config.api_secret.encode()).digest(),
            codecs=codecs_from_config(config.codecs),
            max_pending_invites=config.max_pending_invites,
            overload_lag=config.overload_lag,
            tls_port=config.tls.port_listen if config.tls else None,
            tls_cert_file=config.tls.cert_file if config.tls else None,
            tls_key_file=config.tls.key_file if config.tls else None,
            tls_ca_file=config.tls.ca_file if config.tls else None,
            tls_client_cert=config.tls.default_client_cert if config.tls else None,
            tls_verify_clients=config.tls.verify_clients if config.tls else None,
            tls_policy=config.tls.policy if config.tls else None,
            advertised_tls_port=config.tls.port if config.tls and config.tls.port != config.tls.port_listen else None,
            sip_hostname=config.sip_hostname,
            add_record_route=config.add_record_route,
            outbound_routes=config.outbound_route_headers,
            ws_port=config.websocket.port,
            wss_port=config.websocket.tls_port,
            dns_servers=config.dns.nameservers,
            failover_timeout=config.dns.failover_timeout,
        )
        self.endpoint = endpoint = Endpoint(settings)
        await endpoint.start()
        await self.inspector.start(endpoint)
        ports = PortAllocator(config.rtp_port.start, config.rtp_port.end)
        self._cpu = cpu = CpuLoad()
        self.calls = calls = CallServices(
            config=config,
            livekit=LiveKitCredentials(config.ws_url, config.api_key, config.api_secret),
            codecs=settings.codecs,
            sdp_address=await self._media_address(endpoint.local_host),
            open_rtp=rtp_sessions(ports, self._bind_host()),
            participants=room_participants(config.room_transport),
            decider=decider,
            nonces=RedisNonceLedger(redis_client(config.redis)) if config.redis else MemoryNonceLedger(),
            stats=self.stats,
            capacity=Capacity(config.max_active_calls, config.max_cpu_utilization, cpu),
            report_state=report,
            traces=self.inspector.book,
        )
        cpu.start()
        capacity = calls.capacity
        self.health.busy = lambda: "" if capacity.draining else capacity.refusal
        self.stats.watch(self.health.available, lambda: cpu.load)
        endpoint.take_calls(inbound_handler(calls))
        self.registrations = Registrations(config.registrations, endpoint)
        self.health.registrations = self.registrations.report
        self.registrations.start()
        metrics.watch(capacity, ports, endpoint, asyncio.get_running_loop())
        tls = f", TLS on {settings.tls_port}" if settings.tls_port else ""
        ws = endpoint.settings
        tls += f", WS on {ws.ws_port}" if ws.ws_port else ""
        tls += f", WSS on {ws.wss_port}" if ws.wss_port else ""
        log.info(
            "SIP: %s on %s:%d%s (advertised %s), RTP ports %s (advertised %s)",
            "/".join(settings.transports), self._bind_host(), endpoint.port, tls, endpoint.local_host,
            config.rtp_port, calls.sdp_address,
        )  # fmt: skip
        return calls, endpoint

    async def _media_address(self, signalling: str) -> str:
        """The address our SDP offers for media: ``media_nat_1_to_1_ip``, or with ``media_use_external_ip`` the
        public address STUN reports, else the signalling one (the Go service's media_* keys)."""
        config = self.config
        if config.media_nat_1_to_1_ip:
            return config.media_nat_1_to_1_ip
        if config.media_use_external_ip and not config.use_external_ip:
            found = await discover_external_ip(DEFAULT_STUN_SERVERS)
            if found is None:
                log.warning("media_use_external_ip: no STUN server answered; media is offered on %s", signalling)
            return found or signalling
        return signalling

    def _report_ignored_keys(self) -> None:
        ignored = self.config.ignored_keys
        no_effect = [go_keys.describe(k) for k in ignored if k in go_keys.NO_EFFECT]
        unknown = [k for k in ignored if k not in go_keys.NO_EFFECT]
        if no_effect:
            log.info("config: Go service keys with no effect in this bridge: %s", "; ".join(no_effect))
        if unknown:
            log.warning("config: unknown keys ignored: %s", ", ".join(unknown))

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest() + self.stats.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def drain(self) -> None:
        """Take no new calls (INVITEs get 503, the cluster node leaves the outbound queue) and wait, up to
        ``drain_timeout``, for the calls in progress to end."""
        self.health.state = State.DRAINING
        if self.registrations is not None:
            await self.registrations.stop(UNREGISTER_WAIT)  # registrars stop sending calls here
        if self.calls is None:
            return
        capacity = self.calls.capacity
        capacity.drain()
        if capacity.active:
            log.info("draining: waiting for %d call(s), up to %.0f s", len(capacity.active), self.config.drain_timeout)
        try:
            async with asyncio.timeout(self.config.drain_timeout):
                await capacity.wait_until(lambda c: not c.active)
        except TimeoutError:
            log.warning("draining: %d call(s) still up after drain_timeout; ending them", len(capacity.active))

    async def stop(self) -> None:
        self.health.state = State.DRAINING
        if self.cluster is not None:
            await self.cluster.close()
            self.cluster = None
        if self.control is not None:
            await self.control.close()
            self.control = None
        if self._io is not None:
            await self._io.close()
            self._io = None
        if self._bus is not None:
            await self._bus.close()
            self._bus = None
        if self.registrations is not None:
            await self.registrations.stop(UNREGISTER_WAIT)
            self.registrations = None
        if self.endpoint is not None:
            await self.endpoint.close()
            self.endpoint = None
        await self.inspector.close()
        if self.calls is not None:
            await self.calls.nonces.close()
        if self._cpu is not None:
            await self._cpu.close()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self.store is not None:
            await self.store.close()
            self.store = None
        if self._devserver is not None:
            await self._devserver.stop()
            self._devserver = None




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
        log.info("stopping: draining calls (a second signal stops at once)")
        drained = asyncio.create_task(bridge.drain())
        stop.clear()
        await asyncio.wait([drained, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        drained.cancel()
    finally:
        try:
            await bridge.stop()
        except Exception:
            log.exception("stopping: a part of the bridge did not shut down cleanly")
