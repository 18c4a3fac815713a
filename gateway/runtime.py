"""Wiring: builds the gateway's parts from configuration and runs them (DESIGN.md, "Seams").

This is the one place that knows every part; adding a utility protocol adds one line here.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.api import Operations, RecentAlarms, build_app
from gateway.audit import AuditLog
from gateway.audit.group import GroupCommit
from gateway.clock import Clock, SystemClock
from gateway.config import ConfigError, GatewayConfig, StationConfig, load_config
from gateway.dashboard import attach as attach_dashboard
from gateway.dispatch import Dispatcher, DispatchSettings
from gateway.fleet import Fleet
from gateway.interfaces import AuditSink, LinkHealth, UtilityAdapter
from gateway.metrics import MeteredAudit, Metrics
from gateway.model import Directive, OcppVersion, StationOutcome
from gateway.restorer import restore_settings
from gateway.sharing import Sharing, reached_after
from gateway.store import DirectiveRecord, Store
from gateway.tls import client_context, server_context
from gateway.utility import AlarmRelay, EventRouter, FleetView, RuntimeSink
from gateway.wiring import AdapterFactory, configured_adapters
from protocols.ocpp.auth import verify_password
from protocols.ocpp.server import PREFERENCE, EndpointSettings, OcppServer
from protocols.ocpp.sidecar import Backoff, SidecarProxy, UpstreamSettings

log = logging.getLogger(__name__)

#: The WebSocket close reason a station removed by a reload gets (and, in sidecar mode, its CSMS connection).
REMOVED_REASON = "station removed from the gateway configuration"

__all__ = ["AdapterFactory", "ConfiguredStations", "Gateway"]


class ConfiguredStations:
    """StationDirectory over the configured station list (replaced in place when the list is reloaded)."""

    def __init__(self, stations: Sequence[StationConfig]) -> None:
        self.replace(stations)

    def replace(self, stations: Sequence[StationConfig]) -> None:
        self._stations = {s.id: s for s in stations}

    def known(self, station_id: str) -> bool:
        return station_id in self._stations

    def check_password(self, station_id: str, password: str) -> bool:
        station = self._stations.get(station_id)
        return bool(station and station.password_hash and verify_password(password, station.password_hash))

    def rating(self, station_id: str) -> tuple[float | None, float | None]:
        """Configured (max_w, min_w) for sharing aggregate limits (gateway.sharing)."""
        station = self._stations.get(station_id)
        return (station.max_w, station.min_w) if station else (None, None)

    def versions(self, station_id: str) -> Sequence[OcppVersion]:
        station = self._stations.get(station_id)
        return tuple(station.versions) if station and station.versions else PREFERENCE


def _sidecar(
    config: GatewayConfig,
    stations: ConfiguredStations,
    fleet: Fleet,
    audit: AuditSink,
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
    directory: ConfiguredStations
    metrics: Metrics
    #: The configuration file, when the gateway was started from one: station reloads re-read it.
    source: Path | None
    _api_runner: web.AppRunner
    #: Aggregate targets: shares of `total` directives (docs/dispatch.md).
    sharing: Sharing
    _api_site: web.TCPSite | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def build(
        cls,
        config: GatewayConfig,
        *,
        clock: Clock | None = None,
        adapters: Sequence[UtilityAdapter | AdapterFactory] = (),
        source: Path | None = None,
    ) -> Gateway:
        """Wire every part from `config`: the utility links its sections name, then `adapters`. An adapter may be
        given as a factory taking the FleetView, for adapters that read fleet data. `source` is the file `config`
        came from, re-read by station reloads."""
        clock = clock or SystemClock()
        store = Store(config.database)
        store.mark_all_disconnected()
        log_ = AuditLog.open(config.database, config.certs_dir)
        metrics = Metrics()
        # One group commit for every part that writes the audit while stations talk (gateway.audit.group): their
        # entries keep one order, and what happens in one turn of the event loop costs one fsync.
        audit = GroupCommit(MeteredAudit(log_, metrics))
        log_.before_write(audit.flush)  # writers holding the log itself (API, runtime) go after what is buffered
        fleet = Fleet(((s.id, s.groups) for s in config.stations), store, audit)
        metrics.add_state(fleet, store, log_, clock)
        directory = ConfiguredStations(config.stations)
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
            ocpp = _sidecar(config, directory, fleet, audit, clock, endpoint, ssl_context)
        else:
            ocpp = OcppServer(directory, fleet, clock, endpoint, ssl_context)
        restore = restore_settings(config.dispatch)
        dispatcher = Dispatcher(
            store, fleet, ocpp, audit, clock, DispatchSettings(call_timeout_s=oc.call_timeout_s, restore=restore)
        )
        view = FleetView(fleet)
        built = [a(view) if callable(a) else a for a in [*configured_adapters(config, clock), *adapters]]
        dispatcher.on_event(EventRouter(store, built))

        def last_decision(directive_id: str) -> dict[str, Any] | None:
            decided = log_.query(directive_id=directive_id, kind="allocation.decided")
            if not decided:
                return None
            last = decided[-1]
            after = [
                (e.seq, e.kind, e.station_id, e.message_id, e.data.get("status"))
                for kind in ("command.sent", "station.answer")
                for e in log_.query(directive_id=directive_id, kind=kind, since=last.at)
                if e.seq > last.seq
            ]
            return {**last.data, "reached": reached_after(after)}

        sharing = Sharing(fleet, store, dispatcher, clock, directory.rating, last_decision)
        alarms = AlarmRelay(built, clock)
        fleet.on_alarm(alarms.add)
        recent = RecentAlarms()
        fleet.on_alarm(recent.add)
        sink = RuntimeSink(dispatcher, audit, clock)
        gateway: Gateway | None = None

        async def reload() -> dict[str, list[str]]:
            assert gateway is not None
            return await gateway.reload_stations()

        def links() -> dict[str, LinkHealth]:
            return {a.protocol.value: a.health() for a in built}

        def ready() -> bool:
            return ocpp.listening and store.writable() and all(h.ok for h in links().values())

        app = build_app(
            dispatcher=dispatcher,
            fleet=fleet,
            store=store,
            audit=log_,
            clock=clock,
            token=config.api.bearer(),
            ready=ready,
            operations=Operations(links=links, reload=reload, alarms=recent, metrics=metrics),
        )
        attach_dashboard(
            app, fleet=fleet, dispatcher=dispatcher, store=store, audit=log_, clock=clock, adapters=built,
            token=config.api.bearer(),
        )  # fmt: skip
        runner = web.AppRunner(app, access_log=None)
        gateway = cls(
            config, clock, store, log_, fleet, ocpp, dispatcher, built, sink, alarms, directory, metrics, source,
            runner, sharing,
        )  # fmt: skip
        return gateway

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
            try:
                await adapter.start(self.sink)
            except Exception:  # a utility link that is down must not keep the fleet side from running
                log.exception("utility link %s did not start: /readyz reports it", adapter.protocol.value)
        self.audit.append(
            "config.changed", {"event": "gateway started", "stations": len(self.config.stations)}, at=self.clock.now()
        )
        log.info(
            "gateway started: OCPP %s, API %s",
            self.ocpp.url,
            self.api_url,
            extra={
                "ocpp_url": self.ocpp.url,
                "api_url": self.api_url,
                "links": [a.protocol.value for a in self.adapters],
            },
        )

    async def reload_stations(self) -> dict[str, list[str]]:
        """Re-read the station list from the configuration file (SIGHUP, POST /api/stations/reload): added
        stations may connect, removed ones are disconnected, the others keep their connections. Only `[[stations]]`
        is applied; other changes need a restart. LookupError without a file, ValueError if it does not validate."""
        if self.source is None:
            raise LookupError("the gateway was not started from a configuration file")
        async with self._reload_lock:
            try:
                fresh = load_config(self.source).stations
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
            before = {s.id for s in self.config.stations}
            after = {s.id for s in fresh}
            removed = sorted(before - after)
            self.directory.replace(fresh)  # from now on removed stations are refused at the handshake
            for sid in removed:
                await self._disconnect_removed(sid)
            self.fleet.set_stations((s.id, s.groups) for s in fresh)
            self.config = self.config.model_copy(update={"stations": fresh})
            changes = {"added": sorted(after - before), "removed": removed, "kept": sorted(before & after)}
            self.audit.append("config.changed", {"event": "stations reloaded", **changes}, at=self.clock.now())
            log.info("stations reloaded", extra=changes)
            return changes

    async def _disconnect_removed(self, station_id: str) -> None:
        """Close a removed station's connection (in sidecar mode its CSMS connection too) and audit why."""
        if not await self.ocpp.disconnect(station_id, REMOVED_REASON):
            return
        closed = {"station": 1008} | ({"csms": 1001} if isinstance(self.ocpp, SidecarProxy) else {})
        self.audit.append(
            "config.changed",
            {"event": "station disconnected", "reason": REMOVED_REASON, "close_codes": closed},
            at=self.clock.now(),
            station_id=station_id,
        )

    async def _checkpoints(self) -> None:
        """Sign the audit tree head periodically (RFC 9162 checkpoint), so an export can prove recent history."""
        while True:
            await asyncio.sleep(self.config.audit.checkpoint_s)
            self.audit.checkpoint(self.clock.now())

    async def stop(self, *, grace_s: float | None = None) -> None:
        """Stop: utility links first (no new signals), then refuse new stations, let fan-outs under way finish
        (at most `grace_s`, default the call timeout), sign a last audit checkpoint and close the store."""
        for adapter in self.adapters:
            await adapter.stop()
        self.ocpp.stop_accepting()
        in_flight = self.dispatcher.in_flight()
        if in_flight:
            grace = self.config.ocpp.call_timeout_s if grace_s is None else grace_s
            _, late = await asyncio.wait(in_flight, timeout=grace)
            if late:
                log.warning("%d fan-out(s) still under way after %.0f s: cancelled", len(late), grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ocpp.stop()
        await self.sharing.close()
        await self.dispatcher.close()
        await self._api_runner.cleanup()
        self.audit.append("config.changed", {"event": "gateway stopped"}, at=self.clock.now())
        self.audit.checkpoint(self.clock.now())
        self.audit.close()
        self.store.close()
        log.info("gateway stopped")
