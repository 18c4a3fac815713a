"""encode_entry writes the envelope's fixed keys directly; its bytes must equal the canonical JSON of the whole entry
object, for any data, ids, kinds, times and sequence numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.canonical import MAX_SAFE_INTEGER, CanonicalError, canonical_bytes
from gateway.audit.entry import ENTRY_VERSION, AuditEntry, EntryError, Kind, decode_entry, encode_entry, format_time
from tests.audit.test_canonical import json_values

ids = st.none() | st.text(max_size=40)
times = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(9999, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))]),
)


def _whole(seq: int, entry: AuditEntry) -> bytes:
    """The entry as one object through the general canonical encoder (the definition of the stored bytes)."""
    body: dict[str, Any] = {
        "v": ENTRY_VERSION,
        "seq": seq,
        "at": format_time(entry.at),
        "kind": str(entry.kind),
        "data": entry.data,
        "directive_id": entry.directive_id,
        "station_id": entry.station_id,
        "message_id": entry.message_id,
        "signal_id": entry.signal_id,
    }
    return canonical_bytes(body)


@given(
    st.integers(0, MAX_SAFE_INTEGER),
    st.sampled_from(list(Kind)),
    st.dictionaries(st.text(), json_values, max_size=5),
    times,
    ids,
    ids,
    ids,
    ids,
)
def test_encoded_entries_are_the_canonical_json_of_the_whole_entry(
    seq: int,
    kind: Kind,
    data: dict[str, Any],
    at: datetime,
    directive_id: str | None,
    station_id: str | None,
    message_id: str | None,
    signal_id: str | None,
) -> None:
    entry = AuditEntry(kind, data, at, directive_id, station_id, message_id, signal_id)
    try:
        expected = _whole(seq, entry)
    except CanonicalError:  # e.g. a lone surrogate in a text: refused either way
        with pytest.raises(EntryError):
            encode_entry(seq, entry)
        return
    assert encode_entry(seq, entry) == expected
    assert encode_entry(seq, entry, {}) == expected
    assert decode_entry(expected).seq == seq


def test_values_without_a_canonical_form_are_refused_as_entry_errors() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(EntryError):
        encode_entry(1, AuditEntry(Kind.OPERATOR_ACTION, {"x": float("nan")}, at))
    with pytest.raises(EntryError):
        encode_entry(1, AuditEntry(Kind.OPERATOR_ACTION, {}, at, station_id="\ud800"))
    with pytest.raises(EntryError):
        encode_entry(-1, AuditEntry(Kind.OPERATOR_ACTION, {}, at))
