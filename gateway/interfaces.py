"""Seams between the runtime and the protocol packages (DESIGN.md, "Seams").

Protocol packages implement or call these; they never import each other or the runtime's internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from gateway.model import Alarm, Directive, OcppVersion, SourceProtocol, StationCapabilities, StationOutcome


class ReplyKind(StrEnum):
    RESULT = "result"  # CALLRESULT, schema-valid
    ERROR = "error"  # CALLERROR from the station, or an invalid CALLRESULT
    TIMEOUT = "timeout"
    OFFLINE = "offline"
    INVALID = "invalid"  # the gateway refused to send: the payload failed its schema


@dataclass(frozen=True, slots=True)
class Reply:
    """A station's answer to one CALL, or why there is none."""

    kind: ReplyKind
    message_id: str | None = None
    payload: Mapping[str, Any] | None = None
    error_code: str | None = None
    description: str = ""


class StationLink(Protocol):
    """Sends commands to stations: the OCPP endpoint (CSMS mode) or the sidecar proxy."""

    def new_message_id(self) -> str:
        """A fresh id for a gateway CALL: a sidecar must use ids the CSMS never uses (part 4, 6.4)."""
        ...

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float, message_id: str | None = None
    ) -> Reply:
        """Send one command; `message_id` lets the caller audit the exact frame before it leaves. The caller does not
        change `payload` afterwards: a link may keep its serialized form by identity (a fan-out passes one payload
        object to every station)."""
        ...

    def is_connected(self, station_id: str) -> bool: ...


class StationEvents(Protocol):
    """What a station link reports to the runtime."""

    def station_connected(self, station_id: str, version: OcppVersion, at: datetime) -> None: ...

    def station_disconnected(self, station_id: str, at: datetime) -> None: ...

    def station_booted(self, station_id: str, boot: Mapping[str, Any], at: datetime) -> None: ...

    def station_capabilities(self, station_id: str, caps: StationCapabilities, at: datetime) -> None: ...

    def station_power(self, station_id: str, watts: float, at: datetime, *, meter: int | None = None) -> None:
        """Active power (W, + import) read by one of the station's meters (connector/EVSE id, 0 = main meter,
        None = unknown)."""
        ...

    def station_energy(
        self, station_id: str, meter: int, import_wh: float | None, export_wh: float | None, at: datetime
    ) -> None:
        """Energy registers (cumulative Wh) of one of the station's meters (connector/EVSE id, 0 = main meter)."""
        ...

    def station_measured(
        self,
        station_id: str,
        vars_: float | None,
        hz: float | None,
        phase_w: tuple[float, float, float] | None,
        at: datetime,
    ) -> None:
        """Reactive power (var, + absorbing), grid frequency and per-phase active power, where the station meters
        them (None = not in this message)."""
        ...

    def station_session(
        self, station_id: str, evse: int | None, transaction: str | None, present: bool, at: datetime
    ) -> None:
        """A vehicle arrived at (`present`) or left an EVSE (None = the one `transaction` runs on)."""
        ...

    def station_alarm(self, alarm: Alarm) -> None: ...

    def station_message(
        self, station_id: str, action: str, payload: Mapping[str, Any], message_id: str, at: datetime
    ) -> None:
        """Any other station-initiated message (NotifyDERStartStop, ReportDERControl, ...), for audit and state."""
        ...

    def protocol_error(
        self, station_id: str, code: str, description: str, message_id: str, at: datetime, *, by_station: bool
    ) -> None:
        """A frame refused on the link: by the gateway (CALLERROR/CALLRESULTERROR sent, or dropped) or, with
        `by_station`, a CALLRESULTERROR the station sent about one of ours."""
        ...


class AuditSink(Protocol):
    """The audit log as the runtime and protocol adapters see it (gateway/audit implements it)."""

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
    ) -> int: ...


# -- utility side ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signal:
    """One raw utility input, as received: what the audit log keeps about it (never the whole document)."""

    protocol: SourceProtocol
    #: The server or peer it came from (URL, VTN name, SCADA client address).
    source: str
    #: SHA-256 of the raw bytes, hex.
    digest: str
    size: int
    received_at: datetime
    #: The utility's id of the signal (2030.5 mRID, OpenADR event id ...), when it has one.
    signal_id: str | None = None


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    """One failed attempt on a utility link (audited `upstream.failed`): what was tried, why it failed, which
    attempt in a row it was and when the link tries again."""

    protocol: SourceProtocol
    #: The server (VTN or 2030.5 server URL).
    server: str
    #: poll, register, token, report, or what else the link was doing (2030.5: the resource polled).
    operation: str
    #: The error's class (ClientConnectorError, OpenAdrHttpError, TimeoutError ...).
    error: str
    detail: str
    attempt: int
    #: Seconds until the next attempt (jitter included); None when the link does not schedule one itself.
    retry_in_s: float | None
    #: The HTTP status, when the server answered with an error.
    status: int | None = None


@dataclass(frozen=True, slots=True)
class UpstreamDrop:
    """A report the link gave up on (audited `upstream.dropped`): the utility will never get it."""

    protocol: SourceProtocol
    server: str
    #: What was dropped (report, Response, MirrorMeterReading ...).
    what: str
    #: refused (a 4xx the same body would get again), outbox_full, stopped (not delivered at shutdown), failed.
    reason: str
    detail: str
    status: int | None = None
    #: How many such reports this entry stands for (a link that audits every n-th drop says n).
    count: int = 1
    directive_id: str | None = None


class DirectiveSink(Protocol):
    """What a utility adapter hands its normalized signals to (the runtime implements it)."""

    async def submit(self, directive: Directive, signal: Signal) -> None:
        """A new or changed directive: the same id again means the utility changed it (an identical resubmission,
        as polling produces, changes nothing)."""
        ...

    async def cancel(
        self, directive_id: str, signal: Signal, *, randomize_s: int = 0, superseded: bool = False
    ) -> None:
        """The utility cancelled it, or (`superseded`) replaced it with another; `randomize_s` spreads the end per
        station (2030.5 cancel with randomization)."""
        ...

    def reject(self, signal: Signal, reason: str, *, code: str | None = None) -> None:
        """An input that could not be used: audited (input.rejected) and logged; nothing reaches the fleet."""
        ...

    def sent_upstream(
        self, what: str, data: Mapping[str, Any], *, directive_id: str | None = None, signal_id: str | None = None
    ) -> None:
        """A response, report or event the adapter delivered to the utility: audited (upstream.sent)."""
        ...

    def upstream_failed(self, failure: UpstreamFailure) -> None:
        """A failed attempt on the link: audited (upstream.failed); the adapter retries on its own."""
        ...

    def upstream_dropped(self, drop: UpstreamDrop) -> None:
        """A report the adapter gave up on: audited (upstream.dropped)."""
        ...


class DirectiveEventKind(StrEnum):
    """What an adapter reports upstream about a directive it submitted."""

    RECEIVED = "received"
    SCHEDULED = "scheduled"
    STARTED = "started"
    COMPLETED = "completed"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    PARTIAL = "partial"


@dataclass(frozen=True, slots=True)
class DirectiveEvent:
    directive_id: str
    kind: DirectiveEventKind
    at: datetime
    outcomes: tuple[StationOutcome, ...] = ()
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class AlarmReport:
    """Station alarms, classified: many stations with the same grid fault is a grid event, one alone a local fault."""

    alarms: tuple[Alarm, ...]
    grid_event: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class LinkHealth:
    ok: bool
    last_seen: datetime | None
    detail: str = ""


class UtilityAdapter(Protocol):
    """One utility protocol link (IEEE 2030.5, OpenADR 3, OpenADR 2.0b, IEC 61850): started and stopped by the
    runtime, hands it directives, reports back in its own protocol."""

    protocol: SourceProtocol

    async def start(self, sink: DirectiveSink) -> None: ...

    async def stop(self) -> None: ...

    def health(self) -> LinkHealth: ...

    async def directive_event(self, event: DirectiveEvent) -> None:
        """Called for directives this adapter submitted (the source's protocol matches)."""
        ...

    async def alarm(self, report: AlarmReport) -> None: ...
