"""Prometheus metrics (`/metrics`): names prefixed `dergw_`, never a per-station label (a fleet of thousands would
make thousands of series).

Counters are fed by `MeteredAudit`, a wrapper around the audit sink: every command the dispatcher sends, every
answer, utility signal and rejected input already passes through the audit log, so metrics need no hook of their
own in the dispatcher. Gauges (connections, directives, checkpoint age) are read from the live state at scrape time.
Each Gateway has its own registry, so several gateways can run in one process (tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.audit import AuditLog
from gateway.audit.entry import AuditEntry, parse_time
from gateway.clock import Clock
from gateway.fleet import Fleet
from gateway.model import DirectiveState, OcppVersion
from gateway.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Seconds: from a LAN station's few milliseconds to the 30 s default call timeout.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Sent commands whose answer is not written yet; beyond this the oldest are forgotten (never in normal runs).
_MAX_PENDING = 100_000


class Metrics:
    """The gateway's collector registry and its counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter(
            "dergw_ocpp_calls", "Commands sent to stations, by action and result", ["action", "result"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "dergw_ocpp_call_duration_seconds", "Time from sending a command to its answer (or timeout)", ["action"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.signals = Counter(
            "dergw_utility_signals", "Utility signals received, by protocol", ["protocol"], registry=self.registry
        )
        self.translation_errors = Counter(
            "dergw_translation_errors", "Inputs refused (utility signals, station frames), by reason", ["reason"],
            registry=self.registry,
        )  # fmt: skip

    def add_state(self, fleet: Fleet, store: Store, audit: AuditLog, clock: Clock) -> None:
        self.registry.register(_StateCollector(fleet, store, audit, clock))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(self, fleet: Fleet, store: Store, audit: AuditLog, clock: Clock) -> None:
        self._fleet = fleet
        self._store = store
        self._audit = audit
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        connections = GaugeMetricFamily(
            "dergw_station_connections", "Stations connected now, by OCPP version", labels=["version"]
        )
        for version in OcppVersion:
            count = sum(1 for s in self._fleet.stations.values() if s.connected and s.version is version)
            connections.add_metric([version.value], count)
        yield connections
        yield GaugeMetricFamily("dergw_stations_configured", "Stations in the configuration", len(self._fleet.stations))
        directives = GaugeMetricFamily("dergw_directives", "Directives in the store, by state", labels=["state"])
        counts = self._store.directive_counts()
        for state in DirectiveState:
            directives.add_metric([state.value], counts.get(state.value, 0))
        yield directives
        head = self._audit.head()
        age = (self._clock.now() - parse_time(head.time)).total_seconds() if head is not None else float("nan")
        yield GaugeMetricFamily(
            "dergw_audit_checkpoint_age_seconds", "Seconds since the latest signed audit checkpoint", max(age, 0.0)
        )


_CALL_KINDS = frozenset({"command.sent", "station.answer"})


class MeteredAudit:
    """The audit log as the runtime writes to it, counting what passes through on the way."""

    def __init__(self, audit: AuditLog, metrics: Metrics, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._audit = audit
        self._metrics = metrics
        self._monotonic = monotonic
        self._sent: dict[str, tuple[str, float]] = {}
        self._latency: dict[str, Histogram] = {}

    def append(
        self,
        kind: str,
        data: Mapping[str, Any],
        *,
        at: datetime,
        directive_id: str | None = None,
        station_id: str | None = None,
        message_id: str | None = None,
        signal_id: str | None = None,
    ) -> int:
        seq = self._audit.append(
            kind,
            data,
            at=at,
            directive_id=directive_id,
            station_id=station_id,
            message_id=message_id,
            signal_id=signal_id,
        )
        self._observe_all([(kind, data, message_id)])
        return seq

    def append_many(self, entries: Sequence[AuditEntry]) -> list[int]:
        """Group commits from the dispatcher's fan-out, counted entry by entry (the answers' counts added up per
        action and result first: a write of thousands of answers increments each counter once)."""
        seqs = self._audit.append_many(entries)
        self._observe_all((e.kind, e.data, e.message_id) for e in entries)
        return seqs

    def _observe_all(self, entries: Iterable[tuple[str, Mapping[str, Any], str | None]]) -> None:
        """Count the entries of one write. Commands and answers first, inline (a fan-out writes thousands at once):
        sent ones are remembered with the time of the write, answers counted by (action, result) and each counter
        incremented once."""
        answers: dict[tuple[str, str], int] = {}
        now = self._monotonic()
        sent = self._sent
        for kind, data, message_id in entries:
            if message_id is None or kind not in _CALL_KINDS:
                self._observe(kind, data)
            elif kind == "command.sent":
                if len(sent) >= _MAX_PENDING:
                    sent.pop(next(iter(sent)))
                sent[message_id] = (str(data.get("action")), now)
            elif message_id in sent:  # a station.answer
                action, started = sent.pop(message_id)
                result = str(data.get("status") if data.get("kind") == "result" else data.get("kind"))
                answers[action, result] = answers.get((action, result), 0) + 1
                latency = self._latency.get(action)
                if latency is None:  # one labelled child per action, looked up once
                    latency = self._latency[action] = self._metrics.latency.labels(action)
                latency.observe(now - started)
        for (action, result), count in answers.items():
            self._metrics.calls.labels(action, result).inc(count)

    def _observe(self, kind: str, data: Mapping[str, Any]) -> None:
        """Count one entry other than a command and its answer."""
        if kind == "signal.received":
            self._metrics.signals.labels(str(data.get("protocol"))).inc()
        elif kind == "input.rejected":
            self._metrics.translation_errors.labels(str(data.get("code") or data.get("source") or "other")).inc()
