"""Wiring: builds the gateway's parts from configuration and runs them (DESIGN.md, "Seams").

This is the one place that knows every part; adding a utility protocol adds one line here.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import web

from gateway.api import build_app
from gateway.audit import AuditLog
from gateway.clock import Clock, SystemClock
from gateway.config import GatewayConfig, StationConfig
from gateway.dashboard import attach as attach_dashboard
from gateway.dispatch import Dispatcher, DispatchSettings
from gateway.fleet import Fleet
from gateway.interfaces import UtilityAdapter
from gateway.model import Directive, OcppVersion, StationOutcome
from gateway.store import DirectiveRecord, Store
from gateway.tls import client_context, server_context
from gateway.utility import AlarmRelay, EventRouter, FleetView, RuntimeSink
from protocols.ocpp.auth import verify_password
from protocols.ocpp.server import PREFERENCE, EndpointSettings, OcppServer
from protocols.ocpp.sidecar import Backoff, SidecarProxy, UpstreamSettings

log = logging.getLogger(__name__)

AdapterFactory = Callable[[FleetView], UtilityAdapter]


class ConfiguredStations:
    """StationDirectory over the configured station list."""

    def __init__(self, stations: Sequence[StationConfig]) -> None:
        self._stations = {s.id: s for s in stations}

    def known(self, station_id: str) -> bool:
        return station_id in self._stations

    def check_password(self, station_id: str, password: str) -> bool:
        station = self._stations.get(station_id)
        return bool(station and station.password_hash and verify_password(password, station.password_hash))

    def versions(self, station_id: str) -> Sequence[OcppVersion]:
        station = self._stations.get(station_id)
        return tuple(station.versions) if station and station.versions else PREFERENCE


def _sidecar(
    config: GatewayConfig,
    fleet: Fleet,
    audit: AuditLog,
    clock: Clock,
    endpoint: EndpointSettings,
    ssl_context: ssl.SSLContext | None,
) -> SidecarProxy:
    up = config.ocpp.upstream
    assert up is not None
    upstream_ssl = None
    if up.security_profile >= 2:
        assert up.ca is not None
        upstream_ssl = client_context(up.ca, cert=up.client_cert, key=up.client_key)
    settings = UpstreamSettings(
        url=up.url,
        security_profile=up.security_profile,
        connect_timeout_s=up.connect_timeout_s,
        backoff=Backoff(up.retry_wait_minimum_s, up.retry_random_range_s, up.retry_repeat_times),
        buffer_limit=up.buffer_limit,
    )
    stations = ConfiguredStations(config.stations)
    return SidecarProxy(
        stations, fleet, audit, clock, endpoint, settings, ssl_context, upstream_ssl, buffer_db=config.database
    )


@dataclass
class Gateway:
    """A running gateway: store, audit, fleet registry, OCPP endpoint, dispatcher and operator API."""

    config: GatewayConfig
    clock: Clock
    store: Store
    audit: AuditLog
    fleet: Fleet
    ocpp: OcppServer | SidecarProxy
    dispatcher: Dispatcher
    adapters: Sequence[UtilityAdapter]
    sink: RuntimeSink
    alarms: AlarmRelay
    _api_runner: web.AppRunner
    _api_site: web.TCPSite | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        config: GatewayConfig,
        *,
        clock: Clock | None = None,
        adapters: Sequence[UtilityAdapter | AdapterFactory] = (),
    ) -> Gateway:
        """Wire every part from `config`. An adapter may be given as a factory taking the FleetView, for
        adapters that read fleet data for their reports."""
        clock = clock or SystemClock()
        store = Store(config.database)
        store.mark_all_disconnected()
        audit = AuditLog.open(config.database, config.certs_dir)
        fleet = Fleet(((s.id, s.groups) for s in config.stations), store, audit)
        oc = config.ocpp
        ssl_context = None
        if oc.security_profile >= 2:
            assert oc.tls_cert is not None
            assert oc.tls_key is not None
            ssl_context = server_context(
                oc.tls_cert, oc.tls_key, client_ca=oc.client_ca, require_client_cert=oc.security_profile == 3
            )
        endpoint = EndpointSettings(
            host=oc.host,
            port=oc.port,
            path=oc.path,
            security_profile=oc.security_profile,
            call_timeout_s=oc.call_timeout_s,
            max_message_bytes=oc.max_message_bytes,
            heartbeat_s=oc.heartbeat_s,
            compression=oc.compression,
        )
        ocpp: OcppServer | SidecarProxy
        if oc.mode == "sidecar":
            ocpp = _sidecar(config, fleet, audit, clock, endpoint, ssl_context)
        else:
            ocpp = OcppServer(ConfiguredStations(config.stations), fleet, clock, endpoint, ssl_context)
        dispatcher = Dispatcher(store, fleet, ocpp, audit, clock, DispatchSettings(call_timeout_s=oc.call_timeout_s))
        app = build_app(
            dispatcher=dispatcher,
            fleet=fleet,
            store=store,
            audit=audit,
            clock=clock,
            token=config.api.bearer(),
            ready=lambda: ocpp.listening and store.writable(),
        )
        view = FleetView(fleet)
        built = [a(view) if callable(a) else a for a in adapters]
        dispatcher.on_event(EventRouter(store, built))
        attach_dashboard(
            app, fleet=fleet, dispatcher=dispatcher, store=store, audit=audit, clock=clock, adapters=built,
            token=config.api.bearer(),
        )  # fmt: skip
        alarms = AlarmRelay(built, clock)
        fleet.on_alarm(alarms.add)
        sink = RuntimeSink(dispatcher, audit, clock)
        runner = web.AppRunner(app, access_log=None)
        return cls(config, clock, store, audit, fleet, ocpp, dispatcher, built, sink, alarms, runner)

    @property
    def api_url(self) -> str:
        assert self._api_runner.addresses, "API not started"
        port = self._api_runner.addresses[0][1]
        return f"http://{self.config.api.host}:{port}"

    async def submit(self, directive: Directive) -> DirectiveRecord:
        """The Python API: hand the gateway a canonical directive (same as POST /api/directives)."""
        return await self.dispatcher.submit(directive)

    async def outcomes(self, directive_id: str) -> list[StationOutcome]:
        """Per-station outcomes once the directive's fan-out has finished."""
        return await self.dispatcher.wait(directive_id)

    async def start(self) -> None:
        await self.ocpp.start()
        await self._api_runner.setup()
        self._api_site = web.TCPSite(self._api_runner, self.config.api.host, self.config.api.port)
        await self._api_site.start()
        await self.dispatcher.resume()
        self._tasks = [
            asyncio.create_task(self.dispatcher.run_timer()),
            asyncio.create_task(self.alarms.run()),
            asyncio.create_task(self._checkpoints()),
        ]
        for adapter in self.adapters:
            await adapter.start(self.sink)
        self.audit.append(
            "config.changed", {"event": "gateway started", "stations": len(self.config.stations)}, at=self.clock.now()
        )
        log.info("gateway started: OCPP %s, API %s", self.ocpp.url, self.api_url)

    async def _checkpoints(self) -> None:
        """Sign the audit tree head periodically (RFC 9162 checkpoint), so an export can prove recent history."""
        while True:
            await asyncio.sleep(self.config.audit.checkpoint_s)
            self.audit.checkpoint(self.clock.now())

    async def stop(self) -> None:
        for adapter in self.adapters:
            await adapter.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ocpp.stop()
        await self.dispatcher.close()
        await self._api_runner.cleanup()
        self.audit.checkpoint(self.clock.now())
        self.audit.close()
        self.store.close()
