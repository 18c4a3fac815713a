"""What one audit entry holds, its kinds, and its canonical encoding (the bytes a Merkle leaf commits to)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple

from gateway.audit.canonical import (
    MAX_SAFE_INTEGER,
    CanonicalError,
    Memo,
    canonical_bytes,
    canonical_text,
    parse_json,
    utf8,
)

__all__ = [
    "CORRELATION_FIELDS",
    "ENTRY_VERSION",
    "AuditEntry",
    "EntryError",
    "Kind",
    "StoredEntry",
    "decode_entry",
    "encode_entry",
    "format_time",
    "parse_time",
]

ENTRY_VERSION = 1
CORRELATION_FIELDS = ("directive_id", "station_id", "message_id", "signal_id")
_FIELDS = frozenset({"v", "seq", "at", "kind", "data", *CORRELATION_FIELDS})


class Kind(StrEnum):
    """Every step the gateway records; the strings are part of the stored format."""

    SIGNAL_RECEIVED = "signal.received"
    INPUT_REJECTED = "input.rejected"
    DIRECTIVE_CREATED = "directive.created"
    DIRECTIVE_STATIONS = "directive.stations"
    DIRECTIVE_SCHEDULED = "directive.scheduled"
    DIRECTIVE_ACTIVE = "directive.active"
    DIRECTIVE_OUTCOME = "directive.outcome"
    DIRECTIVE_SUPERSEDED = "directive.superseded"
    DIRECTIVE_CANCELLED = "directive.cancelled"
    DIRECTIVE_COMPLETED = "directive.completed"
    ALLOCATION_DECIDED = "allocation.decided"
    RESTORE_PLANNED = "restore.planned"
    COMMAND_SENT = "command.sent"
    STATION_ANSWER = "station.answer"
    STATION_ALARM = "station.alarm"
    UPSTREAM_SENT = "upstream.sent"
    UPSTREAM_FAILED = "upstream.failed"
    UPSTREAM_DROPPED = "upstream.dropped"
    CONFIG_CHANGED = "config.changed"
    OPERATOR_ACTION = "operator.action"
    STATION_CONNECTED = "station.connected"
    STATION_DISCONNECTED = "station.disconnected"
    STATION_MESSAGE = "station.message"
    STATION_CAPABILITIES = "station.capabilities"
    STATION_RECONCILED = "station.reconciled"
    STATION_SESSION = "station.session"


_KINDS = frozenset(k.value for k in Kind)
_encode_string: Callable[[str], str] = json.encoder.encode_basestring  # as the canonical encoder escapes strings
_NULL = "null"
_VERSION_END = f',"v":{ENTRY_VERSION}}}'


class EntryError(ValueError):
    """An entry that cannot be written, or stored bytes that are not a well-formed entry."""


@lru_cache(maxsize=64)
def format_time(at: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z: fixed width, so text order is time order.

    Cached: the entries of one write share their time (equal aware datetimes are the same instant, so they format
    alike; a naive one never equals an aware one, and errors are not cached)."""
    if at.tzinfo is UTC:  # what the gateway's clocks give: written with +00:00, which becomes the Z
        return at.isoformat(timespec="milliseconds")[:-6] + "Z"
    if at.tzinfo is None or at.utcoffset() is None:
        raise EntryError("audit times must be timezone-aware")
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_time(text: str) -> datetime:
    """Inverse of ``format_time``; naive input is taken as UTC (the CLI accepts it that way)."""
    at = datetime.fromisoformat(text)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


class AuditEntry(NamedTuple):
    """One step to record. ``at`` is supplied by the caller: the log never reads the clock. Immutable, and a named
    tuple rather than a frozen dataclass: a fan-out makes two per station, and a tuple is made three times faster."""

    kind: str
    data: Mapping[str, Any]
    at: datetime
    directive_id: str | None = None
    station_id: str | None = None
    message_id: str | None = None
    signal_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as stored: its sequence number (= Merkle leaf index) and the exact bytes hashed."""

    seq: int
    at: datetime
    kind: str
    data: Mapping[str, Any]
    directive_id: str | None
    station_id: str | None
    message_id: str | None
    signal_id: str | None
    body: bytes = field(repr=False)

    @property
    def at_text(self) -> str:
        return format_time(self.at)


def encode_entry(seq: int, entry: AuditEntry, memo: Memo | None = None) -> bytes:
    """The canonical body of entry ``seq``; every field is present (absent ids are null). Entries written together
    share a ``memo`` (see ``canonical_bytes``)."""
    if entry.kind not in _KINDS:
        raise EntryError(f"unknown audit entry kind {entry.kind!r}")
    if type(entry.data) is not dict and not isinstance(entry.data, Mapping):
        raise EntryError("audit entry data must be a JSON object")
    if type(seq) is not int or not 0 <= seq <= MAX_SAFE_INTEGER:
        raise EntryError(f"seq {seq!r} is not an integer in [0, 2**53]")
    directive_id = _id_text("directive_id", entry.directive_id)
    station_id = _id_text("station_id", entry.station_id)
    message_id = _id_text("message_id", entry.message_id)
    signal_id = _id_text("signal_id", entry.signal_id)
    try:
        # The envelope's keys are fixed ASCII names, so their canonical order (RFC 8785: sorted) is written out as
        # is; only `data` goes through the general encoder (tests/audit/test_entry_encoding.py checks both agree).
        text = "".join(
            (
                '{"at":"',
                format_time(entry.at),
                '","data":',
                canonical_text(entry.data, memo),
                ',"directive_id":',
                directive_id,
                ',"kind":',
                _encode_string(str(entry.kind)),
                ',"message_id":',
                message_id,
                ',"seq":',
                str(seq),
                ',"signal_id":',
                signal_id,
                ',"station_id":',
                station_id,
                _VERSION_END,
            )
        )
        return utf8(text)
    except CanonicalError as exc:
        raise EntryError(f"{entry.kind} entry data: {exc}") from exc


def _id_text(name: str, value: str | None) -> str:
    """A correlation id as its canonical JSON."""
    if value is None:
        return _NULL
    if not isinstance(value, str):
        raise EntryError(f"{name} must be a string or None")
    return _encode_string(value)


def decode_entry(body: bytes) -> StoredEntry:
    """Parse stored bytes and insist they are exactly the canonical encoding of a valid entry."""
    try:
        raw = parse_json(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EntryError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict) or set(raw) != _FIELDS:
        raise EntryError("not an audit entry object (wrong or missing fields)")
    if raw["v"] != ENTRY_VERSION:
        raise EntryError(f"unknown entry version {raw['v']!r}")
    seq, at_text, kind, data = raw["seq"], raw["at"], raw["kind"], raw["data"]
    if type(seq) is not int or seq < 0:
        raise EntryError("seq must be a non-negative integer")
    if kind not in _KINDS:
        raise EntryError(f"unknown kind {kind!r}")
    if not isinstance(data, dict):
        raise EntryError("data must be an object")
    if any(raw[name] is not None and not isinstance(raw[name], str) for name in CORRELATION_FIELDS):
        raise EntryError("correlation ids must be strings or null")
    try:
        at = parse_time(at_text) if isinstance(at_text, str) else None
    except ValueError:
        at = None
    if at is None or format_time(at) != at_text:
        raise EntryError(f"at {at_text!r} is not an ISO 8601 UTC time with milliseconds")
    try:
        canonical = canonical_bytes(raw)
    except CanonicalError as exc:
        raise EntryError(str(exc)) from exc
    if canonical != body:
        raise EntryError("bytes are not the canonical form of the entry")
    return StoredEntry(
        seq=seq,
        at=at,
        kind=kind,
        data=data,
        directive_id=raw["directive_id"],
        station_id=raw["station_id"],
        message_id=raw["message_id"],
        signal_id=raw["signal_id"],
        body=body,
    )
