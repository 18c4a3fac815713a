"""The OpenADR 2.0b VEN link: openleadr's OpenADRClient, set up the way the gateway needs it.

openleadr does the 2.0b XML (schema-checked both ways), optional XML signatures and TLS, registration
(oadrQueryRegistration, oadrCreatePartyRegistration), report registration (oadrRegisterReport) and polling
(oadrPoll at the VTN's oadrRequestedOadrPollFreq, on its own scheduler). This module adds: the configuration, one
TELEMETRY_USAGE and one TELEMETRY_STATUS report per configured resource fed from `FleetData`, the raw bytes of each
oadrDistributeEvent (for the audit digest), the event handler that answers optIn / optOut, a report queue that
holds back reports without a single data point (openleadr queues one on every tick, data or not), and the outcome of
every request (openleadr logs a failed one and carries on, so the VEN could not otherwise audit it).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Protocol

import aiohttp
from openleadr import OpenADRClient
from pydantic import BaseModel, ConfigDict, Field

from gateway.clock import Clock
from gateway.model import Target
from protocols.openadr2b.opt import FleetCapability, Opt
from protocols.openadr2b.policy import NormalizeConfig

log = logging.getLogger(__name__)

#: Called with openleadr's event dict and the raw oadrDistributeEvent it came in; returns the opt answer.
EventHandler = Callable[[dict[str, Any], bytes], Awaitable[Opt]]


class RegistrationError(Exception):
    """The VTN could not be reached or did not register the VEN."""


@dataclass(frozen=True, slots=True)
class RequestFailure:
    """One request to the VTN that openleadr gave up on (it logs it and returns nothing)."""

    #: The 2.0b service: OadrPoll, EiRegisterParty, EiReport, EiEvent, EiOpt.
    service: str
    #: The exception's class, `HTTPError` for an error status, `InvalidMessage` for an answer openleadr refused
    #: (schema, signature), `NoAnswer` when neither is known.
    error: str
    detail: str
    status: int | None = None


#: Called after each request: None when it succeeded.
RequestHandler = Callable[[str, RequestFailure | None], None]


@dataclass(slots=True)
class _Outcome:
    status: int | None = None
    error: BaseException | None = None


#: The outcome of the request the current task is making (openleadr's report worker and poller run concurrently).
_OUTCOME: ContextVar[_Outcome | None] = ContextVar("openadr2b_outcome", default=None)


async def _on_request_end(_: aiohttp.ClientSession, __: SimpleNamespace, params: aiohttp.TraceRequestEndParams) -> None:
    outcome = _OUTCOME.get()
    if outcome is not None:
        outcome.status = params.response.status


async def _on_request_exception(
    _: aiohttp.ClientSession, __: SimpleNamespace, params: aiohttp.TraceRequestExceptionParams
) -> None:
    outcome = _OUTCOME.get()
    if outcome is not None:
        outcome.error = params.exception


def _tracing() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(_on_request_end)
    trace.on_request_exception.append(_on_request_exception)
    trace.freeze()
    return trace


class _Client(OpenADRClient):  # type: ignore[misc]
    """openleadr's client, telling `on_request` how each request went (openleadr swallows failures)."""

    def __init__(self, *, on_request: RequestHandler, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_request = on_request

    async def _ensure_client_session(self) -> None:
        fresh = not self.client_session
        await super()._ensure_client_session()
        if fresh:  # openleadr builds the session itself, with no way to pass trace configs in
            self.client_session.trace_configs.append(_tracing())

    async def _perform_request(self, service: str, message: Any) -> Any:
        outcome = _Outcome()
        token = _OUTCOME.set(outcome)
        try:
            result = await super()._perform_request(service, message)
        finally:
            _OUTCOME.reset(token)
        if result != (None, {}):  # openleadr's answer to every failure
            self._on_request(service, None)
        elif outcome.error is not None:
            error = outcome.error
            self._on_request(service, RequestFailure(service, type(error).__name__, str(error) or repr(error)))
        elif outcome.status is not None and outcome.status != 200:
            detail = f"{service}: HTTP {outcome.status}"
            self._on_request(service, RequestFailure(service, "HTTPError", detail, outcome.status))
        elif outcome.status == 200:
            detail = f"{service}: the answer failed openleadr's checks (schema, signature or parse)"
            self._on_request(service, RequestFailure(service, "InvalidMessage", detail, 200))
        else:
            self._on_request(service, RequestFailure(service, "NoAnswer", f"{service}: no answer"))
        return result


class _ReportsWithData(asyncio.Queue[Any]):
    """openleadr's queue of outgoing oadrUpdateReport reports, minus those with no interval.

    openleadr builds and queues a report on every tick even when the callbacks gave no data point (a fleet with no
    metered power yet). Such an oadrReport is schema-valid but says nothing, and openleadr's own VTN answers it
    with HTTP 500 (its oadrUpdateReport handler reads `report['intervals']`). A missing reading is not a zero, so
    nothing is sent for that tick: the VTN sees a gap, as for any sample it did not get.
    """

    def __init__(self, on_skip: Callable[[Any], None]) -> None:
        super().__init__()
        self._on_skip = on_skip

    def put_nowait(self, item: Any) -> None:  # Queue.put ends here too
        if not getattr(item, "intervals", None):
            self._on_skip(item)
            return
        super().put_nowait(item)


class OpenAdr2bConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The VTN's 2.0b base URL, e.g. https://vtn.example/OpenADR2/Simple/2.0b (services are appended to it).
    vtn_url: str = Field(min_length=1)
    ven_name: str = Field(min_length=1, max_length=128)
    #: A venID assigned out of band; None = the VTN assigns one at registration.
    ven_id: str | None = None
    #: PEM files for TLS client authentication and XML signatures (2.0b requires both in production).
    cert: str | None = None
    key: str | None = None
    passphrase: str | None = None
    ca_file: str | None = None
    #: The VTN certificate's fingerprint: incoming messages whose signature does not match are dropped.
    vtn_fingerprint: str | None = None
    #: OpenADR resourceID -> the stations or group it stands for: one usage and one status report each.
    resources: dict[str, Target] = Field(default_factory=lambda: {"fleet": Target()})
    #: Sampling (and reporting) interval the reports offer the VTN.
    report_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)


class FleetData(Protocol):
    """What the VEN needs to know about the fleet (the runtime implements it)."""

    def demand_w(self, target: Target) -> float | None:
        """Current import of the target's stations, W (TELEMETRY_USAGE, and the baseline of offsets)."""
        ...

    def capability(self, target: Target) -> FleetCapability:
        """What the target's stations can do now (the opt decision, and TELEMETRY_STATUS)."""
        ...


def canonical_event(event: dict[str, Any]) -> bytes:
    """A stable encoding of an event dict, for the digest when the raw message is not at hand."""
    return json.dumps(event, sort_keys=True, separators=(",", ":"), default=str).encode()


class Ven:
    """One registered VEN. `start` returns once registration, report registration and the first poll are done."""

    def __init__(
        self,
        config: OpenAdr2bConfig,
        fleet: FleetData,
        on_event: EventHandler,
        *,
        clock: Clock,
        on_request: RequestHandler | None = None,
    ) -> None:
        self.config = config
        self._fleet = fleet
        self._on_event = on_event
        self._clock = clock
        self._on_request = on_request or (lambda service, failure: None)
        self._client: OpenADRClient | None = None
        self._distribute: bytes | None = None
        self.last_seen: datetime | None = None
        #: Messages received from the VTN (any answer, even an error page).
        self.answers = 0
        #: Reports held back for want of a data point (see `_ReportsWithData`).
        self.reports_skipped = 0

    @property
    def client(self) -> OpenADRClient:
        if self._client is None:
            raise RuntimeError("VEN not started")
        return self._client

    @property
    def ven_id(self) -> str | None:
        return None if self._client is None else self._client.ven_id

    @property
    def poll_interval(self) -> timedelta | None:
        return None if self._client is None else self._client.poll_frequency

    @property
    def registered(self) -> bool:
        return self._client is not None and self._client.registration_id is not None

    async def start(self) -> None:
        c = self.config
        # openleadr makes an asyncio.Queue and a scheduler in __init__: it must be built inside the running loop.
        client = _Client(
            on_request=self._on_request, ven_name=c.ven_name, vtn_url=c.vtn_url, ven_id=c.ven_id, cert=c.cert,
            key=c.key, passphrase=c.passphrase, ca_file=c.ca_file, vtn_fingerprint=c.vtn_fingerprint,
            show_fingerprint=False, disable_signature=c.cert is None,
        )  # fmt: skip
        self._client = client
        client.pending_reports = _ReportsWithData(self._skipped)
        interval = timedelta(seconds=c.report_interval_s)
        for name, target in c.resources.items():
            client.add_report(
                callback=lambda target=target: self._usage(target), resource_id=name, measurement="real_power",
                unit="W", scale="none", report_specifier_id=f"{c.ven_name}.usage", r_id=f"usage.{name}",
                sampling_rate=interval, report_duration=interval,
            )  # fmt: skip
            client.add_report(
                callback=lambda target=target: self._status(target), resource_id=name,
                report_name="TELEMETRY_STATUS", report_specifier_id=f"{c.ven_name}.status", r_id=f"status.{name}",
                sampling_rate=interval, report_duration=interval,
            )  # fmt: skip
        client.add_hook("after_receive_xml", self._received)
        client.add_handler("on_event", self._handle)
        client.add_handler("on_update_event", self._handle)
        answers_before = self.answers
        await client.run()  # on failure openleadr logs why, closes its session and returns
        if client.registration_id is None:
            if self.answers == answers_before:
                raise RegistrationError(f"the VTN at {c.vtn_url} did not answer")
            raise RegistrationError(f"the VTN at {c.vtn_url} did not register VEN {c.ven_name!r}")
        log.info("openadr2b: registered as venID %s (registration %s)", client.ven_id, client.registration_id)

    async def stop(self) -> None:
        if self._client is not None and self._client.client_session is not None:
            await self._client.stop()

    def _skipped(self, report: Any) -> None:
        self.reports_skipped += 1
        log.debug("openadr2b: %s report %s not sent: no data point", report.report_name, report.report_request_id)

    def _received(self, xml: str) -> None:
        self.answers += 1
        self.last_seen = self._clock.now()
        if "oadrDistributeEvent" in xml[:2048]:
            self._distribute = xml.encode()

    async def _handle(self, event: dict[str, Any]) -> str:
        raw = self._distribute if self._distribute is not None else canonical_event(event)
        opt = await self._on_event(event, raw)
        return opt.value

    def _usage(self, target: Target) -> list[tuple[datetime, float]]:
        watts = self._fleet.demand_w(target)
        return [] if watts is None else [(self._clock.now(), float(watts))]

    def _status(self, target: Target) -> list[tuple[datetime, float]]:
        """openleadr carries only a float per interval (no oadrPayloadResourceStatus): the share of the target's
        stations that are online, 0-1."""
        cap = self._fleet.capability(target)
        share = cap.stations_online / cap.stations_total if cap.stations_total else 0.0
        return [(self._clock.now(), share)]
