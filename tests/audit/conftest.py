"""Shared builders: a log in a temporary directory and a realistic directive story to put in it."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.audit import AuditEntry, AuditLog, Kind

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def directive_story(directive_id: str, stations: list[str], start: datetime) -> list[AuditEntry]:
    """A signal becomes a directive, is allocated, sent to each station, answered by all but the last."""
    signal_id = f"sig-{directive_id}"
    story = [
        AuditEntry(
            Kind.SIGNAL_RECEIVED,
            {
                "source": "ieee2030_5",
                "url": f"https://utility/derp/1/derc/{directive_id}",
                "sha256": "ab" * 32,
            },
            start,
            signal_id=signal_id,
        ),
        AuditEntry(
            Kind.DIRECTIVE_CREATED,
            {"directive": {"id": directive_id, "export_limit_w": 0.0, "import_limit_w": 7400.5}},
            start,
            directive_id=directive_id,
            signal_id=signal_id,
        ),
        AuditEntry(
            Kind.ALLOCATION_DECIDED,
            {"limits_w": dict.fromkeys(stations, 3700)},
            start,
            directive_id=directive_id,
        ),
    ]
    for n, station in enumerate(stations):
        message_id = f"{directive_id}-{station}-m"
        sent = start + timedelta(seconds=1 + n)
        story.append(
            AuditEntry(
                Kind.COMMAND_SENT,
                {
                    "action": "SetChargingProfile",
                    "frame": [2, message_id, "SetChargingProfile", {"evseId": 1}],
                },
                sent,
                directive_id=directive_id,
                station_id=station,
                message_id=message_id,
            )
        )
        if n < len(stations) - 1:
            story.append(
                AuditEntry(
                    Kind.STATION_ANSWER,
                    {"status": "Accepted", "payload": {"status": "Accepted"}},
                    sent + timedelta(milliseconds=250),
                    station_id=station,
                    message_id=message_id,
                )
            )
    story.append(
        AuditEntry(
            Kind.UPSTREAM_SENT,
            {"protocol": "ieee2030_5", "response": "EventReceived"},
            start + timedelta(seconds=10),
            directive_id=directive_id,
        )
    )
    return story


def fill(log: AuditLog, directives: int, *, stations: int = 3) -> None:
    """Several directive stories, one transaction each, a minute apart."""
    for d in range(directives):
        names = [f"CS{(d + s) % 5}" for s in range(stations)]
        log.append_many(directive_story(f"D{d}", names, T0 + timedelta(minutes=d)))


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return tmp_path / "certs"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "dergw.sqlite"


@pytest.fixture
def log(db: Path, keys: Path) -> Iterator[AuditLog]:
    with AuditLog.open(db, keys, checkpoint_every=10) as opened:
        yield opened
