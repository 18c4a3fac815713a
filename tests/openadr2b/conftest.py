"""Fixtures: openleadr's own VTN (OpenADRServer) on 127.0.0.1, a recording DirectiveSink that can be awaited, and a
fleet with fixed data. Nothing sleeps: tests await the VTN's callbacks and the sink's records."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from openleadr import OpenADRServer, utils

from gateway.clock import SystemClock
from gateway.model import Target, TargetScope
from protocols.openadr2b.adapter import OpenAdr2bAdapter
from protocols.openadr2b.opt import FleetCapability
from protocols.openadr2b.ven import OpenAdr2bConfig
from tests.support import RecordingSink

VEN_ID = "ven-gw"
WAIT_S = 15.0


class FixedFleet:
    def __init__(self) -> None:
        self.capabilities = FleetCapability(2, 2, 22_000.0, can_discharge=False, can_hold_setpoint=True)

    def demand_w(self, target: Target) -> float | None:
        return 7_400.0

    def capability(self, target: Target) -> FleetCapability:
        return self.capabilities


class Vtn:
    """openleadr's VTN with handlers that turn its callbacks into awaitable records."""

    def __init__(self, *, accept: bool = True, port: int = 0) -> None:
        self.server = OpenADRServer(
            vtn_id="TEST-VTN", http_host="127.0.0.1", http_port=port, requested_poll_freq=timedelta(seconds=1),
            show_fingerprint=False, ven_lookup=self._lookup,
        )  # fmt: skip
        #: (service, HTTP status) of every answer the VTN gave: a handler that fails shows as a 500.
        self.answers: list[tuple[str, int]] = []
        self.server.app.middlewares.append(self._record)
        self.accept = accept
        self.registrations: list[dict[str, Any]] = []
        self.opts: dict[str, asyncio.Queue[str]] = {}
        self.reports: asyncio.Queue[tuple[str, str, list[tuple[Any, float]]]] = asyncio.Queue()
        self.server.add_handler("on_create_party_registration", self._register)
        self.server.add_handler("on_register_report", self._register_report)
        self.url = ""

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        self.answers.append((request.path.rsplit("/", 1)[-1], response.status))
        return response

    def failed_answers(self) -> list[tuple[str, int]]:
        return [(service, status) for service, status in self.answers if status != 200]

    def _lookup(self, ven_id: str) -> dict[str, Any]:
        return {"ven_id": VEN_ID, "ven_name": "gateway", "registration_id": "reg-1"} if ven_id == VEN_ID else {}

    def _register(self, payload: dict[str, Any]) -> tuple[str, str] | bool:
        self.registrations.append(payload)
        return (VEN_ID, "reg-1") if self.accept else False

    def _register_report(
        self, ven_id: str, resource_id: str, measurement: str, unit: str | None, scale: str | None,
        min_sampling_interval: timedelta, max_sampling_interval: timedelta,
    ) -> tuple[Callable[[list[tuple[Any, float]]], None], timedelta]:  # fmt: skip
        def received(values: list[tuple[Any, float]]) -> None:
            self.reports.put_nowait((resource_id, measurement, values))

        return received, min_sampling_interval

    def add_event(self, signal_name: str, signal_type: str, intervals: list[dict[str, Any]], **extra: Any) -> str:
        """Queue an event for the gateway's VEN; its opt answers arrive in `self.opts[event_id]`."""
        answers: asyncio.Queue[str] = asyncio.Queue()
        event_id: str = self.server.add_event(
            ven_id=VEN_ID, signal_name=signal_name, signal_type=signal_type, intervals=intervals,
            callback=self._answered(answers), **extra,
        )  # fmt: skip
        self.opts[event_id] = answers
        return event_id

    def add_raw_event(self, event: Any) -> str:
        """Queue an openleadr `objects.Event` (for what add_event cannot say, such as an itemBase)."""
        answers: asyncio.Queue[str] = asyncio.Queue()
        event_id: str = self.server.add_raw_event(VEN_ID, event, callback=self._answered(answers))
        self.opts[event_id] = answers
        return event_id

    def modify_event(self, event_id: str, intervals: list[dict[str, Any]]) -> int:
        """Give an event new signal intervals as the VTN's business logic would: its modificationNumber goes up and
        the VEN gets the new version on its next poll. Returns the new modificationNumber."""
        event = utils.find_by(self.server.events[VEN_ID], "event_descriptor.event_id", event_id)
        event.event_signals[0].intervals = intervals
        number: int = utils.increment_event_modification_number(event)
        self.server.events_updated[VEN_ID] = True
        return number

    @staticmethod
    def _answered(answers: asyncio.Queue[str]) -> Callable[[str, str, str], None]:
        def answered(ven_id: str, event_id: str, opt_type: str) -> None:
            answers.put_nowait(opt_type)

        return answered

    async def opt(self, event_id: str) -> str:
        async with asyncio.timeout(WAIT_S):
            return await self.opts[event_id].get()

    async def report(self) -> tuple[str, str, list[tuple[Any, float]]]:
        async with asyncio.timeout(WAIT_S):
            return await self.reports.get()


@pytest.fixture
async def vtn() -> AsyncIterator[Vtn]:
    server = Vtn()
    await server.server.run()
    port = server.server.app_runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b"
    yield server
    await server.server.stop()


def adapter_config(vtn: Vtn, **extra: Any) -> OpenAdr2bConfig:
    options: dict[str, Any] = {
        "vtn_url": vtn.url, "ven_name": "gateway", "report_interval_s": 1,
        "resources": {"site-a": {"scope": "group", "ids": ["site-a"]}},
        "normalize": {"reference_import_w": 22_000, "targets": {"site-a": {"scope": "group", "ids": ["site-a"]}}},
    }  # fmt: skip
    options.update(extra)
    return OpenAdr2bConfig.model_validate(options)


Started = tuple[OpenAdr2bAdapter, RecordingSink]


@pytest.fixture
async def started(vtn: Vtn) -> AsyncIterator[Started]:
    adapter = OpenAdr2bAdapter(adapter_config(vtn), clock=SystemClock(), fleet=FixedFleet())
    sink = RecordingSink()
    await adapter.start(sink)
    yield adapter, sink
    await adapter.stop()


SITE_A = Target(scope=TargetScope.GROUP, ids=["site-a"])
