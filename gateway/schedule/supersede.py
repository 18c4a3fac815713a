"""Supersession: when a newer directive makes an older one irrelevant everywhere, by the rule of `in_force`.

An older directive is superseded when, at every station it targets and for every control it carries, arbitration
would pick the newer one for the whole of what is left of the older one's window: the newer targets at least its
stations (same EVSE), carries at least its controls, has the same or a better priority (it is the more recent, so
a tie goes to it), and its window covers the rest of the older one's. Defaults supersede only defaults, and
directives randomized per station never (their windows differ by station). The caller checks the targets and that
the newer one was taken by the stations. Pure: `now` is an argument.
"""

from __future__ import annotations

from datetime import datetime

from gateway.model import Directive


def covers(
    newer: Directive, newer_received: datetime, older: Directive, older_received: datetime, now: datetime
) -> bool:
    """Whether `newer` (received after `older`) is in force wherever and whenever `older` would be, from `now` on."""
    if newer.is_default != older.is_default or newer.priority > older.priority:
        return False
    if any(d.randomize_start_s or d.randomize_duration_s for d in (newer, older)):
        return False
    if newer.target.evse_id != older.target.evse_id:
        return False
    if not set(older.controls.present()) <= set(newer.controls.present()):
        return False
    if newer.is_default:
        return True
    old_end, new_end = older.end(older_received), newer.end(newer_received)
    old_start = max(older.start or older_received, now)
    new_start = newer.start or newer_received
    if old_end is not None and old_end <= old_start:
        return True  # nothing of the older one is left
    return new_start <= old_start and (new_end is None or (old_end is not None and old_end <= new_end))
