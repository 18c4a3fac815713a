"""A directive's station list in the audit: its digest in directive.created, the list itself after the first chunk.

directive.created is written with the first chunk's command.sent entries, before the first frame leaves. With the
list in it, that write encoded every station id in the audit's canonical JSON (about 110 kB, 2-3 ms at 10,000
stations) on the way to the first frame. It carries the list's count and SHA-256 instead, and a directive.stations
entry with the list itself follows the first chunk (docs/audit.md, "The station list of a directive").
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from gateway.audit.entry import AuditEntry, Kind

__all__ = ["digest", "directive_entries"]


def digest(stations: Sequence[str]) -> str:
    """SHA-256 (hex) of the station ids in order, each followed by a newline, UTF-8:
    the same as `printf '%s\\n' ID... | sha256sum`."""
    text = "\n".join(stations) + "\n" if stations else ""
    return hashlib.sha256(text.encode()).hexdigest()


def directive_entries(
    directive: Mapping[str, Any],
    number: int,
    stations: Sequence[str],
    at: datetime,
    *,
    signal_id: str | None,
    changed: bool = False,
) -> tuple[AuditEntry, AuditEntry]:
    """directive.created (the directive, its number, its station list's count and digest) and directive.stations
    (the station ids it was resolved to, in order, and the same digest)."""
    sha = digest(stations)
    directive_id = str(directive["id"])
    created: dict[str, Any] = {
        "directive": directive,
        "number": number,
        "station_count": len(stations),
        "stations_sha256": sha,
    }
    if changed:
        created["changed"] = True
    return (
        AuditEntry(Kind.DIRECTIVE_CREATED.value, created, at, directive_id=directive_id, signal_id=signal_id),
        AuditEntry(
            Kind.DIRECTIVE_STATIONS.value, {"stations": list(stations), "sha256": sha}, at, directive_id=directive_id
        ),
    )
