"""The runtime's side of the utility seam: the DirectiveSink adapters submit to, the routing of directive events
back to the adapter a directive came from, and the alarm relay that classifies station alarms before they go up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.clock import Clock
from gateway.dispatch import Dispatcher, TargetError
from gateway.fleet import Fleet, StationState, energy_between
from gateway.interfaces import (
    AuditSink,
    DirectiveEvent,
    Signal,
    UpstreamDrop,
    UpstreamFailure,
    UtilityAdapter,
)
from gateway.model import Alarm, Directive, OcppVersion, OperationMode, Target
from gateway.schedule.alarms import classify
from gateway.store import Store
from protocols.ieee2030_5.fleet import FleetRatings, FleetState
from protocols.openadr2b.opt import FleetCapability
from protocols.openadr3.reports import ResourceSample

if TYPE_CHECKING:  # the IEC 61850 package is loaded only when a deployment configures it
    from protocols.iec61850.translate import StationReading

log = logging.getLogger(__name__)


def _signal_data(signal: Signal) -> dict[str, object]:
    return {
        "protocol": signal.protocol.value,
        "source": signal.source,
        "sha256": signal.digest,
        "size": signal.size,
        "received_at": signal.received_at.isoformat(),
    }


class RuntimeSink:
    """gateway.interfaces.DirectiveSink: every signal is audited, then becomes a directive, a cancel or a refusal."""

    def __init__(self, dispatcher: Dispatcher, audit: AuditSink, clock: Clock) -> None:
        self._dispatcher = dispatcher
        self._audit = audit
        self._clock = clock

    async def submit(self, directive: Directive, signal: Signal) -> None:
        self._audit.append("signal.received", _signal_data(signal), at=signal.received_at, signal_id=signal.signal_id)
        try:
            await self._dispatcher.change(directive)
        except TargetError as exc:
            self.reject(signal, str(exc), code="target")

    async def cancel(
        self, directive_id: str, signal: Signal, *, randomize_s: int = 0, superseded: bool = False
    ) -> None:
        action = "supersede" if superseded else "cancel"
        data = {**_signal_data(signal), action: directive_id, "randomize_s": randomize_s}
        self._audit.append("signal.received", data, at=signal.received_at, signal_id=signal.signal_id)
        try:
            await self._dispatcher.cancel(directive_id, superseded=superseded, randomize_s=randomize_s)
        except KeyError:
            self.reject(signal, f"cancel of unknown directive {directive_id}", code="unknown-directive")

    def reject(self, signal: Signal, reason: str, *, code: str | None = None) -> None:
        log.warning("%s signal from %s rejected: %s", signal.protocol.value, signal.source, reason)
        self._audit.append(
            "input.rejected",
            {**_signal_data(signal), "reason": reason, "code": code},
            at=self._clock.now(),
            signal_id=signal.signal_id,
        )

    def sent_upstream(
        self, what: str, data: Mapping[str, Any], *, directive_id: str | None = None, signal_id: str | None = None
    ) -> None:
        self._audit.append(
            "upstream.sent",
            {"what": what, **data},
            at=self._clock.now(),
            directive_id=directive_id,
            signal_id=signal_id,
        )

    def upstream_failed(self, failure: UpstreamFailure) -> None:
        data = {
            "link": failure.protocol.value,
            "server": failure.server,
            "operation": failure.operation,
            "error": failure.error,
            "status": failure.status,
            "detail": failure.detail,
            "attempt": failure.attempt,
            "retry_in_s": None if failure.retry_in_s is None else round(failure.retry_in_s, 3),
        }
        self._audit.append("upstream.failed", data, at=self._clock.now())

    def upstream_dropped(self, drop: UpstreamDrop) -> None:
        data = {
            "link": drop.protocol.value,
            "server": drop.server,
            "what": drop.what,
            "reason": drop.reason,
            "status": drop.status,
            "detail": drop.detail,
            "count": drop.count,
        }
        self._audit.append("upstream.dropped", data, at=self._clock.now(), directive_id=drop.directive_id)


class EventRouter:
    """Sends each directive event to the adapter of the protocol the directive came from."""

    def __init__(self, store: Store, adapters: Sequence[UtilityAdapter]) -> None:
        self._store = store
        self._adapters = adapters

    async def __call__(self, event: DirectiveEvent) -> None:
        record = self._store.directive(event.directive_id)
        if record is None:
            return
        for adapter in self._adapters:
            if adapter.protocol is record.directive.source.protocol:
                try:
                    await adapter.directive_event(event)
                except Exception:  # one utility link's fault never stops the others
                    log.exception("adapter %s failed on %s", adapter.protocol.value, event.kind.value)


class AlarmRelay:
    """Collects station alarms for `window_s`, classifies them (grid event or local fault) and reports them to
    every adapter. `flush()` classifies what is pending now; the runtime calls it on a timer."""

    def __init__(self, adapters: Sequence[UtilityAdapter], clock: Clock, *, window_s: float = 10.0) -> None:
        self._adapters = adapters
        self._clock = clock
        self.window_s = window_s
        self._pending: list[Alarm] = []

    def add(self, alarm: Alarm) -> None:
        self._pending.append(alarm)

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        for report in classify(pending, now=self._clock.now(), window_s=self.window_s):
            for adapter in self._adapters:
                try:
                    await adapter.alarm(report)
                except Exception:  # one utility link's fault never stops the others
                    log.exception("adapter %s failed to report an alarm", adapter.protocol.value)

    async def run(self) -> None:
        """Flush every `window_s` until cancelled."""
        while True:
            await asyncio.sleep(self.window_s)
            await self.flush()


class FleetView:
    """The fleet as utility adapters read it: the FleetData of protocols.openadr3 (samples, demand),
    protocols.openadr2b (demand, capability), protocols.ieee2030_5 (ratings, DER state) and protocols.iec61850
    (readings). The registry keeps no power history, so a sample's power is the latest reading; energy comes from
    the stations' import registers over [start, end] (fleet.energy_between). A sample is ESTIMATED when some
    stations of the target have not reported power, or their register readings do not cover the interval."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    def _states(self, target: Target) -> list[StationState]:
        try:
            return [self._fleet.stations[sid] for sid in self._fleet.resolve(target)]
        except KeyError:
            return []

    def demand_w(self, target: Target) -> float | None:
        readings = [s.power_w for s in self._states(target) if s.connected and s.power_w is not None]
        return sum(readings) if readings else None

    def sample(self, target: Target, start: datetime, end: datetime) -> ResourceSample:
        states = self._states(target)
        readings = [s.power_w for s in states if s.power_w is not None]
        faulted = any(s.last_alarm is not None and not s.last_alarm.ended for s in states)
        caps = [s.capabilities for s in states if s.capabilities is not None]
        spans = [energy_between(s.energy, start, end) for s in states]
        metered = [span for span in spans if span is not None]
        energy_ok = not metered or (len(metered) == len(states) and all(span.covered for span in metered))
        complete = bool(states) and len(readings) == len(states) and energy_ok
        quality = "OK" if complete else "ESTIMATED" if readings or metered else "MISSING"
        return ResourceSample(
            power_w=sum(readings) if readings else None,
            energy_wh=sum(span.energy_wh for span in metered) if metered else None,
            meter_wh=sum(span.meter_wh for span in metered) if metered else None,
            max_charge_w=sum(c.max_charge_rate_w or 0.0 for c in caps) or None,
            max_discharge_w=sum(c.max_discharge_rate_w or 0.0 for c in caps) or None,
            operating_state="ERROR" if faulted else "NORMAL",
            quality=quality,
        )

    def capability(self, target: Target) -> FleetCapability:
        """What the target's online stations can do now: discharge and setpoints need OCPP 2.1 abilities."""
        states = self._states(target)
        online = [s for s in states if s.connected and s.capabilities is not None]
        caps = [s.capabilities for s in online if s.capabilities is not None]
        return FleetCapability(
            stations_total=len(states),
            stations_online=len(online),
            max_import_w=sum(c.max_charge_rate_w or c.max_w or 0.0 for c in caps),
            can_discharge=any(c.version is OcppVersion.V21 and c.max_discharge_rate_w for c in caps),
            can_hold_setpoint=bool(caps) and all(OperationMode.CENTRAL_SETPOINT in c.operation_modes for c in caps),
        )

    def ratings(self, target: Target) -> FleetRatings:
        """Nameplate sums of the target's stations that reported capabilities (max_w falls back to max charge)."""
        caps = [s.capabilities for s in self._states(target) if s.capabilities is not None]
        return FleetRatings(
            max_w=sum(c.max_w or c.max_charge_rate_w or 0.0 for c in caps),
            max_charge_w=sum(c.max_charge_rate_w or c.max_w or 0.0 for c in caps),
            max_discharge_w=sum(c.max_discharge_rate_w or 0.0 for c in caps),
            max_var=sum(c.max_var or 0.0 for c in caps),
        )

    def der_state(self, target: Target) -> FleetState:
        """Online and faulted counts, site power (connected stations) and the ratings of the online stations."""
        states = self._states(target)
        online = [s for s in states if s.connected]
        caps = [s.capabilities for s in online if s.capabilities is not None]
        return FleetState(
            stations=len(states),
            online=len(online),
            faulted=sum(1 for s in states if s.last_alarm is not None and not s.last_alarm.ended),
            power_w=self.demand_w(target),
            available_w=sum(c.max_w or c.max_charge_rate_w or 0.0 for c in caps),
            available_var=sum(c.max_var or 0.0 for c in caps),
        )

    def readings(self) -> Mapping[str, StationReading]:
        """Each station's latest active and reactive power, grid frequency and per-phase power, as metered."""
        from protocols.iec61850.translate import StationReading

        return {
            s.id: StationReading(connected=s.connected, watts=s.power_w, vars=s.vars, hz=s.hz, phase_w=s.phase_w)
            for s in self._fleet.stations.values()
        }
