"""gateway.audit.group: buffered entries are written in order, in one transaction, on the next turn of the event
loop or with the next durable write (ahead of it); hooks run first; nothing is lost when a write fails."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.entry import AuditEntry
from gateway.audit.group import GroupCommit
from gateway.audit.log import AuditLog
from gateway.fleet import Fleet
from gateway.model import OcppVersion
from gateway.store import Store

AT = datetime(2026, 1, 1, tzinfo=UTC)


class Sink:
    """Records each transaction (one append_many) as the list of entry kinds it held."""

    def __init__(self) -> None:
        self.transactions: list[list[str]] = []
        self.fail = False

    def append(self, kind: str, data: Mapping[str, Any], *, at: datetime, **fields: str | None) -> int:
        return self.append_many([AuditEntry(kind, data, at, **fields)])[0]

    def append_many(self, entries: Sequence[AuditEntry]) -> list[int]:
        if self.fail:
            raise OSError("disk full")
        first = sum(len(t) for t in self.transactions)
        self.transactions.append([str(e.kind) for e in entries])
        return list(range(first, first + len(entries)))


def entry(kind: str) -> AuditEntry:
    return AuditEntry(kind, {}, AT, station_id="S1")


async def test_one_turn_of_the_loop_is_one_transaction() -> None:
    sink = Sink()
    group = GroupCommit(sink)
    group.later(entry("station.connected"))
    group.later(entry("station.message"), entry("station.capabilities"))
    assert sink.transactions == []
    await asyncio.sleep(0)
    assert sink.transactions == [["station.connected", "station.message", "station.capabilities"]]


async def test_a_durable_write_takes_the_buffer_along_ahead_of_it() -> None:
    sink = Sink()
    group = GroupCommit(sink)
    saved: list[int] = []
    group.before_flush(lambda: saved.append(len(sink.transactions)))
    group.later(entry("station.answer"))
    seqs = group.append_many([entry("command.sent"), entry("command.sent")])
    assert sink.transactions == [["station.answer", "command.sent", "command.sent"]]
    assert seqs == [1, 2]  # the caller's own entries
    assert saved == [0]  # the hook ran before the transaction
    assert group.append("directive.scheduled", {}, at=AT, directive_id="d") == 3
    await asyncio.sleep(0)  # nothing left for the scheduled flush
    assert len(sink.transactions) == 2


async def test_unscheduled_entries_wait_for_the_next_write() -> None:
    sink = Sink()
    group = GroupCommit(sink)
    group.later(entry("directive.created"), schedule=False)
    await asyncio.sleep(0)
    assert sink.transactions == []
    group.append_many([entry("command.sent")])
    assert sink.transactions == [["directive.created", "command.sent"]]


async def test_a_failed_write_keeps_the_buffer() -> None:
    sink = Sink()
    group = GroupCommit(sink)
    group.later(entry("station.connected"), schedule=False)
    sink.fail = True
    with pytest.raises(OSError, match="disk full"):
        group.append("station.alarm", {}, at=AT)
    sink.fail = False
    group.flush()
    assert sink.transactions == [["station.connected"]]


def test_without_an_event_loop_entries_are_written_at_once() -> None:
    sink = Sink()
    GroupCommit(sink).later(entry("station.connected"))
    assert sink.transactions == [["station.connected"]]


def test_over_shares_a_group() -> None:
    group = GroupCommit(Sink())
    assert GroupCommit.over(group) is group


async def test_fleet_events_of_one_turn_share_a_transaction(tmp_path: Path) -> None:
    """Stations connecting and booting cost one fsync per turn of the event loop, not one per event."""
    sink = Sink()
    group = GroupCommit(sink)
    store = Store(tmp_path / "gw.db")
    try:
        fleet = Fleet([("S1", []), ("S2", [])], store, group)
        assert fleet.audit is group
        for sid in ("S1", "S2"):
            fleet.station_connected(sid, OcppVersion.V21, AT)
            fleet.station_booted(sid, {"reason": "PowerUp"}, AT)
        assert sink.transactions == []
        group.append("directive.created", {}, at=AT, directive_id="d")  # a durable write goes after them
        fleet.station_disconnected("S1", AT)
        await asyncio.sleep(0)
    finally:
        store.close()
    connected_and_booted = ["station.connected", "station.message"] * 2
    assert sink.transactions == [[*connected_and_booted, "directive.created"], ["station.disconnected"]]


async def test_a_writer_holding_the_log_itself_goes_after_the_buffer(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path / "audit.db", tmp_path / "keys")
    try:
        group = GroupCommit(log)
        log.before_write(group.flush)
        group.later(entry("station.connected"), schedule=False)
        log.append("operator.action", {}, at=AT)
        assert [e.kind for e in log.query()] == ["station.connected", "operator.action"]
        assert group.append("station.alarm", {}, at=AT) == 2  # its own write does not flush twice
    finally:
        log.close()


async def test_durable_callers_of_one_turn_share_a_transaction_and_return_once_it_is_written() -> None:
    sink = Sink()
    group = GroupCommit(sink)
    group.later(entry("station.answer"), schedule=False)  # buffered before them: written ahead, with them
    returned: list[int] = []

    async def clear(n: int) -> None:
        await group.durable(entry("command.sent"))
        returned.append(len(sink.transactions))  # what was written when this caller went on

    await asyncio.gather(*(clear(n) for n in range(50)))
    assert sink.transactions == [["station.answer"] + ["command.sent"] * 50]
    assert returned == [1] * 50


async def test_durable_entries_go_with_an_earlier_synchronous_write() -> None:
    sink = Sink()
    group = GroupCommit(sink)
    waiter = asyncio.ensure_future(group.durable(entry("command.sent")))
    await asyncio.sleep(0)  # the waiter has buffered its entry; the scheduled flush has not run yet
    group.append_many([entry("directive.created")])
    await waiter
    assert sink.transactions == [["command.sent", "directive.created"]]


async def test_a_failed_durable_write_raises_and_drops_only_the_durable_entries() -> None:
    sink = Sink()
    group = GroupCommit(sink)
    group.later(entry("station.answer"))
    sink.fail = True
    with pytest.raises(OSError, match="disk full"):
        await group.durable(entry("command.sent"))
    sink.fail = False
    group.flush()
    assert sink.transactions == [["station.answer"]]  # the answer is kept, the unsent command's entry is not


async def test_a_durable_caller_cancelled_before_the_write_leaves_no_entry() -> None:
    sink = Sink()
    group = GroupCommit(sink)
    waiter = asyncio.ensure_future(group.durable(entry("command.sent")))
    await asyncio.sleep(0)
    group.later(entry("station.answer"), schedule=False)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    group.flush()
    assert sink.transactions == [["station.answer"]]
