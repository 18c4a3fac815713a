"""Grouped writes of a fan-out keep the audit's promises: every command is on disk before its frame leaves, and
each command.sent precedes its station.answer (gateway/dispatch.py writes plans in chunks and answers in groups).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.audit.entry import AuditEntry
from gateway.audit.group import BatchAuditSink
from gateway.demo import SAMPLE_DIRECTIVE
from gateway.model import Directive, OcppVersion, OutcomeStatus
from gateway.runtime import Gateway
from protocols.ocpp.simulator import SimStation
from tests.support import PASSWORD, make_config, running, station_configs

#: More than the dispatcher's first chunk of plans (16), so several chunks are written.
COUNT = 40
DROOP = {"over_freq_hz": 50.2, "under_freq_hz": 49.8, "over_droop": 0.05, "under_droop": 0.05, "response_time_s": 5}


class Witness(SimStation):
    """Reads the gateway's SQLite file from a connection of its own the moment a gateway CALL reaches it."""

    database: Path
    #: message id -> (command.sent rows for it, the stored outcome's status) as found on arrival: the pending outcome is
    #: in flight (Store.hold_in_flight), not in the file.
    seen: dict[str, tuple[int, str | None]]

    def _on_message(self, text: str | bytes) -> None:
        frame = json.loads(text)
        if frame[0] == 2 and frame[2] in ("SetDERControl", "SetChargingProfile"):
            with contextlib.closing(sqlite3.connect(self.database)) as db:
                sent = _sent_rows(db, frame[1], self.station_id)
                row = db.execute("SELECT status FROM outcomes WHERE station_id=?", (self.station_id,)).fetchone()
            self.seen[frame[1]] = (sent, None if row is None else row[0])
        super()._on_message(text)


def _sent_rows(db: sqlite3.Connection, message_id: str, station_id: str) -> int:
    """How many command.sent entries name this message to this station (1: it is on disk)."""
    (sent,) = db.execute(
        "SELECT count(*) FROM audit_entries WHERE kind='command.sent' AND message_id=? AND station_id=?",
        (message_id, station_id),
    ).fetchone()
    return int(sent)


class ArrivalWitness(Witness):
    """Also notes, on arrival of each CALL of `actions`, whether its command.sent is on disk."""

    actions: tuple[str, ...] = ()
    #: message id -> command.sent rows for it found on arrival.
    arrived: dict[str, int]

    def _on_message(self, text: str | bytes) -> None:
        frame = json.loads(text)
        if frame[0] == 2 and frame[2] in self.actions:
            with contextlib.closing(sqlite3.connect(self.database)) as db:
                self.arrived[frame[1]] = _sent_rows(db, frame[1], self.station_id)
        super()._on_message(text)


async def _fan_out(gw: Gateway, raw: dict[str, object]) -> list[Witness]:
    ids = [f"W{i:03d}" for i in range(COUNT)]
    stations = [Witness(gw.ocpp.url, sid, OcppVersion.V21, password=PASSWORD, meter_interval=3600) for sid in ids]
    for station in stations:
        station.database, station.seen = gw.config.database, {}
    try:
        await asyncio.gather(*(s.start() for s in stations))
        await asyncio.gather(*(gw.fleet.stations[sid].capabilities_ready.wait() for sid in ids))
        record = await gw.dispatcher.submit(Directive.model_validate(raw))
        outcomes = await gw.dispatcher.wait(record.directive.id)
        assert len(outcomes) == COUNT
        assert all(o.status is OutcomeStatus.ACCEPTED for o in outcomes)
    finally:
        await asyncio.gather(*(s.stop() for s in stations))
    return stations


def _assert_sent_before_answered(gw: Gateway, directive_id: str, stations: list[Witness]) -> None:
    entries = gw.audit.trail(directive_id)
    sent = {(e.station_id, e.message_id): e.seq for e in entries if e.kind == "command.sent"}
    answered = {(e.station_id, e.message_id): e.seq for e in entries if e.kind == "station.answer"}
    received = {(s.station_id, mid) for s in stations for mid in s.seen}
    assert set(sent) == set(answered) == received
    assert all(sent[key] < answered[key] for key in sent)
    scheduled = next(e.seq for e in entries if e.kind == "directive.scheduled")
    assert max(answered.values()) < scheduled


async def test_every_command_is_on_disk_before_its_frame_arrives(tmp_path: Path) -> None:
    config = make_config(tmp_path, station_configs([f"W{i:03d}" for i in range(COUNT)]))
    async with running(config) as gw:
        stations = await _fan_out(gw, {"id": "droop", "duration_s": 600, "controls": {"freq_droop": DROOP}})
        for station in stations:
            assert len(station.seen) == 1
            assert list(station.seen.values()) == [(1, None)]  # the outcome is written with the answer
        _assert_sent_before_answered(gw, "droop", stations)


class Transactions:
    """Wraps the gateway's audit sink and notes the kinds of entries each transaction held."""

    def __init__(self, inner: BatchAuditSink) -> None:
        self.inner = inner
        self.kinds: list[list[str]] = []

    def append(self, kind: str, data: Mapping[str, Any], *, at: datetime, **fields: str | None) -> int:
        return self.append_many([AuditEntry(kind, data, at, **fields)])[0]

    def append_many(self, entries: Sequence[AuditEntry]) -> list[int]:
        self.kinds.append([str(e.kind) for e in entries])
        return self.inner.append_many(entries)


async def test_the_directive_is_recorded_with_its_first_chunk(tmp_path: Path) -> None:
    """directive.created costs no fsync of its own: it goes to disk with the first chunk's command.sent entries,
    ahead of them, before any frame leaves."""
    config = make_config(tmp_path, station_configs([f"W{i:03d}" for i in range(COUNT)]))
    async with running(config) as gw:
        group = gw.fleet.audit
        spy = Transactions(group._audit)
        group._audit = spy
        stations = await _fan_out(gw, {"id": "droop", "duration_s": 600, "controls": {"freq_droop": DROOP}})
        _assert_sent_before_answered(gw, "droop", stations)
        entries = gw.audit.trail("droop")
    first = next(kinds for kinds in spy.kinds if "directive.created" in kinds)
    after = first[first.index("directive.created") + 1 :]
    assert after == ["command.sent"] * 16  # the dispatcher's first chunk
    created = next(e.seq for e in entries if e.kind == "directive.created")
    assert all(created < e.seq for e in entries if e.kind == "command.sent")


async def test_the_station_list_follows_the_first_chunk_under_its_digest(tmp_path: Path) -> None:
    """directive.created carries the station list's count and SHA-256, not the ids (encoding 10,000 of them held up
    the first frame); the list itself is a directive.stations entry after the first chunk, outside its transaction,
    and its digest is the one directive.created committed to."""
    config = make_config(tmp_path, station_configs([f"W{i:03d}" for i in range(COUNT)]))
    async with running(config) as gw:
        group = gw.fleet.audit
        spy = Transactions(group._audit)
        group._audit = spy
        await _fan_out(gw, {"id": "droop", "duration_s": 600, "controls": {"freq_droop": DROOP}})
        entries = gw.audit.trail("droop")
    ids = [f"W{i:03d}" for i in range(COUNT)]
    expected = hashlib.sha256("".join(f"{sid}\n" for sid in ids).encode()).hexdigest()
    created = next(e for e in entries if e.kind == "directive.created")
    listed = next(e for e in entries if e.kind == "directive.stations")
    assert "stations" not in created.data
    assert (created.data["station_count"], created.data["stations_sha256"]) == (COUNT, expected)
    assert listed.data == {"stations": ids, "sha256": expected}
    first_sent = [e.seq for e in entries if e.kind == "command.sent"][:16]
    assert created.seq < min(first_sent)
    assert max(first_sent) < listed.seq
    first = next(kinds for kinds in spy.kinds if "directive.created" in kinds)
    assert "directive.stations" not in first


async def test_several_commands_per_station_keep_their_audit_order(tmp_path: Path) -> None:
    """SAMPLE_DIRECTIVE needs SetDERControl twice and SetChargingProfile on a 2.1 station: all are recorded, in
    one transaction, before the first is sent; each answer is recorded after its command."""
    config = make_config(tmp_path, station_configs([f"W{i:03d}" for i in range(COUNT)]))
    async with running(config) as gw:
        stations = await _fan_out(gw, SAMPLE_DIRECTIVE)
        for station in stations:
            assert len(station.seen) >= 2
            assert all(sent == 1 for sent, _ in station.seen.values())
        _assert_sent_before_answered(gw, str(SAMPLE_DIRECTIVE["id"]), stations)


async def _droop_held(gw: Gateway, stations: Sequence[SimStation]) -> None:
    """Start the stations and have a frequency droop directive answered by every one."""
    await asyncio.gather(*(s.start() for s in stations))
    await asyncio.gather(*(gw.fleet.stations[s.station_id].capabilities_ready.wait() for s in stations))
    record = await gw.dispatcher.submit(
        Directive.model_validate({"id": "droop", "duration_s": 600, "controls": {"freq_droop": DROOP}})
    )
    await gw.dispatcher.wait(record.directive.id)


class ClearWitness(ArrivalWitness):
    actions = ("ClearDERControl",)


async def test_clears_of_a_cancel_are_on_disk_before_their_frames_and_share_transactions(tmp_path: Path) -> None:
    """A cancel clears every station at once: each clear's command.sent is durable before its frame leaves
    (GroupCommit.durable), and they go to disk together rather than one transaction (one fsync) per station."""
    ids = [f"W{i:03d}" for i in range(COUNT)]
    config = make_config(tmp_path, station_configs(ids))
    async with running(config) as gw:
        group = gw.fleet.audit
        spy = Transactions(group._audit)
        group._audit = spy
        stations = [
            ClearWitness(gw.ocpp.url, sid, OcppVersion.V21, password=PASSWORD, meter_interval=3600) for sid in ids
        ]
        for station in stations:
            station.database, station.seen, station.arrived = gw.config.database, {}, {}
        try:
            await _droop_held(gw, stations)
            before = len(spy.kinds)
            await gw.dispatcher.cancel("droop")
        finally:
            await asyncio.gather(*(s.stop() for s in stations))
        entries = gw.audit.trail("droop")
    for station in stations:
        assert list(station.arrived.values()) == [1]
    clear_ids = {mid for s in stations for mid in s.arrived}
    sent = {e.message_id: e.seq for e in entries if e.kind == "command.sent" and e.message_id in clear_ids}
    answered = {e.message_id: e.seq for e in entries if e.kind == "station.answer" and e.message_id in clear_ids}
    assert set(sent) == set(answered) == clear_ids
    assert all(sent[mid] < answered[mid] for mid in sent)
    with_clears = [kinds for kinds in spy.kinds[before:] if "command.sent" in kinds]
    assert sum(kinds.count("command.sent") for kinds in with_clears) == COUNT
    assert len(with_clears) < COUNT // 2


class QueryWitness(ArrivalWitness):
    actions = ("GetDERControl", "GetChargingProfiles")


async def test_queries_of_a_reconnect_storm_are_on_disk_before_their_frames_and_share_transactions(
    tmp_path: Path,
) -> None:
    """The whole fleet reconnects at once (a gateway restart, a network outage): reconciliation asks each station what
    it holds. Each query's command.sent is durable before its frame leaves, and they go to disk together, not one
    transaction (one fsync, one signed head) per station and query; each answer follows its query. Then the fleet
    comes back having lost what it held: the directive sent again to each goes to disk the same way."""
    ids = [f"W{i:03d}" for i in range(COUNT)]
    config = make_config(tmp_path, station_configs(ids))
    async with running(config) as gw:
        stations = first = [
            QueryWitness(gw.ocpp.url, sid, OcppVersion.V21, password=PASSWORD, meter_interval=3600) for sid in ids
        ]
        for station in stations:
            station.database, station.seen, station.arrived = gw.config.database, {}, {}
        blank: list[QueryWitness] = []
        try:
            await _droop_held(gw, stations)
            await asyncio.gather(*(s.stop() for s in stations))
            group = gw.fleet.audit
            spy = Transactions(group._audit)
            group._audit = spy
            for sid in ids:
                gw.fleet.stations[sid].capabilities_ready.clear()
            await asyncio.gather(*(s.start() for s in stations))
            await asyncio.gather(*(gw.fleet.stations[sid].capabilities_ready.wait() for sid in ids))
            while gw.dispatcher.resends():
                await asyncio.gather(*gw.dispatcher.resends())
            gw.dispatcher.flush()
            queries = list(spy.kinds)
            await asyncio.gather(*(s.stop() for s in stations))
            spy.kinds.clear()
            blank = [
                QueryWitness(gw.ocpp.url, sid, OcppVersion.V21, password=PASSWORD, meter_interval=3600) for sid in ids
            ]
            for station in blank:
                station.database, station.seen, station.arrived = gw.config.database, {}, {}
                gw.fleet.stations[station.station_id].capabilities_ready.clear()
            stations = blank
            await asyncio.gather(*(s.start() for s in stations))
            await asyncio.gather(*(gw.fleet.stations[sid].capabilities_ready.wait() for sid in ids))
            while gw.dispatcher.resends():
                await asyncio.gather(*gw.dispatcher.resends())
            gw.dispatcher.flush()
        finally:
            await asyncio.gather(*(s.stop() for s in stations))
        entries = gw.audit.query(kind="command.sent") + gw.audit.query(kind="station.answer")
    resent = [mid for s in blank for mid in s.seen]
    assert len(resent) == COUNT  # the directive again, every station
    assert {s.seen[mid][0] for s in blank for mid in s.seen} == {1}  # on disk when it arrived
    with_resends = [kinds for kinds in spy.kinds if "command.sent" in kinds]
    assert sum(kinds.count("command.sent") for kinds in with_resends) == 3 * COUNT  # two queries and the directive
    assert len(with_resends) < COUNT
    queried = {mid: sent for s in first for mid, sent in s.arrived.items()}
    assert len(queried) == 2 * COUNT  # GetDERControl and GetChargingProfiles, every station
    assert set(queried.values()) == {1}  # each on disk when its frame arrived
    sent = {e.message_id: e.seq for e in entries if e.kind == "command.sent" and e.message_id in queried}
    answered = {e.message_id: e.seq for e in entries if e.kind == "station.answer" and e.message_id in queried}
    assert set(sent) == set(answered) == set(queried)
    assert all(sent[mid] < answered[mid] for mid in sent)
    with_queries = [kinds for kinds in queries if "command.sent" in kinds]
    assert sum(kinds.count("command.sent") for kinds in with_queries) == 2 * COUNT
    assert len(with_queries) < COUNT
