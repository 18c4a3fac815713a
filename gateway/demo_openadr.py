"""The demo's OpenADR 3 step: the VTN publishes an event, the gateway's VEN turns it into directives, and the VTN
receives the reports the event asks for once its intervals are over.

Kept apart from `gateway.demo` so the scenario there stays a list of steps. The event: an IMPORT_CAPACITY_LIMIT in
two intervals (6 kW, then 4 kW for the fleet), each reported (USAGE, DEMAND) when it ends.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.interfaces import DirectiveEvent, DirectiveEventKind
from protocols.openadr3.reports import rfc3339
from protocols.openadr3.vtn import Vtn

#: The limit of each interval, in kW (under the stations' 7 kW demand, so each shows in the metered power).
LIMITS_KW = (6.0, 4.0)
#: Where the VEN reports: the whole fleet as one resource.
RESOURCE = "demo-fleet"

Wait = Callable[[Callable[[DirectiveEvent], bool], float], Awaitable[DirectiveEvent | None]]


def event_body(program_id: str, start: datetime, interval_s: int) -> dict[str, Any]:
    """Two consecutive intervals from `start`, one report per interval as each ends (OpenADR 3 User Guide 7.3)."""
    return {
        "programID": program_id,
        "eventName": "demo-capacity-limit",
        "intervalPeriod": {"start": rfc3339(start), "duration": f"PT{interval_s}S"},
        "payloadDescriptors": [
            {"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "IMPORT_CAPACITY_LIMIT", "units": "KW"}
        ],
        "intervals": [
            {"id": i, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [kw]}]} for i, kw in enumerate(LIMITS_KW)
        ],
        "reportDescriptors": [
            {"payloadType": p, "startInterval": 0, "numIntervals": 1, "frequency": 1, "repeat": -1}
            for p in ("USAGE", "DEMAND", "DATA_QUALITY")
        ],
    }


class OpenAdrStep:
    """Publish the event (`post`), wait for the VEN to dispatch it (`dispatched`), and at the end wait for both
    intervals to complete and their reports to reach the VTN (`reported`)."""

    def __init__(self, vtn: Vtn, first: Wait) -> None:
        self._vtn, self._first = vtn, first
        self.event_id = ""
        self.directives: list[str] = []

    async def post(self, interval_s: int, start_in_s: int) -> None:
        [program] = self._vtn.objects("programs")
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=start_in_s)
        event = await self._vtn.create("events", event_body(program["id"], start, interval_s))
        self.event_id = event["id"]
        limits = ", then ".join(f"{kw:g} kW" for kw in LIMITS_KW)
        print(
            f"\nscenario 2/5: the OpenADR 3 VTN publishes event {self.event_id}: IMPORT_CAPACITY_LIMIT {limits}"
            f" ({interval_s} s each, starting in {start_in_s} s), reports USAGE, DEMAND and DATA_QUALITY per interval"
        )

    async def dispatched(self, deadline: float, counts: Callable[[DirectiveEvent], str]) -> bool:
        """Both intervals' directives planned on the stations (the VEN polls the VTN)."""
        planned = {DirectiveEventKind.SCHEDULED, DirectiveEventKind.PARTIAL, DirectiveEventKind.REJECTED}
        prefix = f"oa3.{self.event_id}."
        for position in range(len(LIMITS_KW)):
            directive_id = f"{prefix}{position}.0"
            event = await self._first(_matching(directive_id, planned), deadline)
            if event is None:
                print(f"the OpenADR event's interval {position} did not reach the stations in time", file=sys.stderr)
                return False
            self.directives.append(directive_id)
            print(f"  the VEN polled it; interval {position} sent as {directive_id}: station outcomes {counts(event)}")
        return True

    async def reported(self, deadline: float) -> bool:
        """Each interval completed and the VTN holds one report for it."""
        for directive_id in self.directives:
            done = await self._first(_matching(directive_id, {DirectiveEventKind.COMPLETED}), deadline)
            if done is None:
                print(f"the OpenADR event's {directive_id} did not complete in time", file=sys.stderr)
                return False
        # The runtime hands each COMPLETED event to the VEN before the demo sees it, and the VEN posts the report
        # it makes due before returning: by now the VTN holds it.
        reports = [r for r in self._vtn.reports if r.get("eventID") == self.event_id]
        print(f"  the event's intervals are over; the VTN received {len(reports)} report(s):")
        for report in reports:
            for resource in report["resources"]:
                for interval in resource["intervals"]:
                    values = ", ".join(_shown(p) for p in interval["payloads"])
                    print(f"    {report['reportName']} {resource['resourceName']}: {values}")
        return len(reports) == len(LIMITS_KW)


def _shown(payload: dict[str, Any]) -> str:
    """One report payload as the demo prints it (DATA_QUALITY says when registers did not cover the interval)."""
    value = payload["values"][0]
    units = {"USAGE": " kWh", "DEMAND": " kW"}.get(payload["type"])
    return f"{payload['type']} {value}" if units is None else f"{payload['type']} {value:.3f}{units}"


def _matching(directive_id: str, kinds: set[DirectiveEventKind]) -> Callable[[DirectiveEvent], bool]:
    return lambda e: e.directive_id == directive_id and e.kind in kinds
