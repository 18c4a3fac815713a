"""A gateway's history before the bench's rounds (`dergw bench fanout --history N`): N fleet-wide directives that
ended a day ago, each with every station's outcome and its command.sent and station.answer audit entries, written
through the store and the audit log as the gateway writes them. A gateway that has run for a while pays for what
grows with its files (indexes, snapshots, reads per station); an empty file hides it.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

from gateway.audit import AuditEntry, AuditLog, Kind
from gateway.audit.stationlist import directive_entries
from gateway.bench import workload
from gateway.dispatch import answer_data, sent_entry
from gateway.interfaces import Reply, ReplyKind
from gateway.model import DirectiveState
from gateway.store import Store
from protocols.ocpp.message_ids import new_message_id

#: Entries per audit transaction, about what a fan-out's group commits write.
_BATCH = 1000


def fill(database: Path, certs_dir: Path, station_ids: list[str], directives: int, now: datetime) -> None:
    """Write `directives` ended fleet-wide directives' records for `station_ids` (answers in a shuffled order)."""
    ended = now - timedelta(days=1)
    store = Store(database)
    try:
        with AuditLog.open(database, certs_dir) as audit:
            for k in range(directives):
                _one(store, audit, f"history-{k + 1}", station_ids, ended, random.Random(k))
    finally:
        store.close()


def _one(
    store: Store, audit: AuditLog, directive_id: str, station_ids: list[str], at: datetime, rng: random.Random
) -> None:
    directive = workload.named(directive_id, at)
    number = store.add_directive(directive, DirectiveState.RECEIVED, at)
    command = workload.der_control(directive, number, at)
    ids = {sid: new_message_id() for sid in station_ids}
    audit.append_many(directive_entries(directive.model_dump(mode="json"), number, station_ids, at, signal_id=None))
    sent = [sent_entry(directive_id, sid, command, ids[sid], at) for sid in station_ids]
    order = rng.sample(station_ids, len(station_ids))
    answers = [
        AuditEntry(
            Kind.STATION_ANSWER,
            answer_data(Reply(ReplyKind.RESULT, ids[sid], payload={"status": "Accepted"}), "Accepted"),
            at,
            directive_id=directive_id,
            station_id=sid,
            message_id=ids[sid],
        )
        for sid in order
    ]
    for entries in (sent, answers):
        for i in range(0, len(entries), _BATCH):
            audit.append_many(entries[i : i + _BATCH])
    outcomes = [workload.accepted(directive_id, sid, ids[sid], at) for sid in order]
    for i in range(0, len(outcomes), _BATCH):
        store.save_outcomes(outcomes[i : i + _BATCH], at)
    store.set_directive_state(directive_id, DirectiveState.COMPLETED, at)
