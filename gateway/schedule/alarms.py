"""Alarm classification: many stations reporting the same grid fault together is a grid event, one alone is a
local fault. Both go back to the utility with the station list (issue: reporting back). Pure: times come in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from gateway.interfaces import AlarmReport
from gateway.model import Alarm


def classify(
    alarms: Sequence[Alarm], *, now: datetime, window_s: float = 10.0, grid_event_min_stations: int = 3
) -> list[AlarmReport]:
    """Group alarms that started within `window_s` of each other by (control, grid fault).

    A group raised by at least `grid_event_min_stations` distinct stations is one grid-event report; every other
    alarm is reported alone as a local fault. Alarms without a grid fault (a control made the station deviate,
    R05.FR.01) are always local. Ended alarms are reported alone, as the end of what they ended.
    """
    reports: list[AlarmReport] = []
    groups: dict[tuple[str, str], list[list[Alarm]]] = {}
    for alarm in sorted(alarms, key=lambda a: a.at):
        if alarm.ended or alarm.grid_event_fault is None:
            reports.append(AlarmReport((alarm,), grid_event=False, at=now))
            continue
        runs = groups.setdefault((alarm.control, alarm.grid_event_fault), [])
        if runs and alarm.at - runs[-1][0].at <= timedelta(seconds=window_s):
            runs[-1].append(alarm)
        else:
            runs.append([alarm])
    for runs in groups.values():
        for run in runs:
            if len({a.station_id for a in run}) >= grid_event_min_stations:
                reports.append(AlarmReport(tuple(run), grid_event=True, at=now))
            else:
                reports.extend(AlarmReport((a,), grid_event=False, at=now) for a in run)
    return sorted(reports, key=lambda r: r.alarms[0].at)
