"""Offline verification of an audit database: recompute every hash from the entries themselves.

Nothing stored is trusted except the public key the caller supplies: each body must be canonical and
carry its own row's sequence number, the index columns and stored leaf hash must match it, the Merkle
root recomputed from the bodies must equal every signed checkpoint and the signed head, and the head
must cover exactly the rows present (so truncation and appended rows show).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit.checkpoint import Checkpoint, key_fingerprint
from gateway.audit.entry import EntryError, decode_entry
from gateway.audit.log import connect, read_checkpoints, read_entries, read_head
from gateway.audit.merkle import Frontier, leaf_hash
from gateway.progress import Tick, ticking

__all__ = ["MAX_PROBLEMS", "Problem", "RootTracker", "VerifyReport", "verify_db"]

MAX_PROBLEMS = 50


@dataclass(frozen=True, slots=True)
class Problem:
    """One failed check. ``seq`` (and ``line`` in a bundle) locate the entry; ``last`` is set when the
    check can only narrow it to the range seq..last (a signed root that no longer matches)."""

    message: str
    seq: int | None = None
    line: int | None = None
    last: int | None = None

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.seq is not None:
            where.append(f"seq {self.seq}" if self.last is None else f"seq {self.seq}..{self.last}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


@dataclass(slots=True)
class VerifyReport:
    """What was checked and what failed; ``ok`` only when nothing did."""

    source: str
    key_fingerprint: str
    entries: int = 0
    checkpoints: int = 0
    tree_size: int = 0
    root: bytes = b""
    problems: list[Problem] = field(default_factory=list)
    dropped: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, message: str, seq: int | None = None, line: int | None = None, last: int | None = None) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(message, seq, line, last))
        else:
            self.dropped += 1

    @property
    def first_bad_entry(self) -> Problem | None:
        """The earliest entry a problem points at: an exactly located one unless a signed range that
        fails ends before it (then the bad entry is somewhere in that range)."""

        def position(p: Problem) -> int:
            return p.line if p.line is not None else p.seq if p.seq is not None else -1

        exact = [p for p in self.problems if (p.seq is not None or p.line is not None) and p.last is None]
        ranges = [p for p in self.problems if p.last is not None]
        first_exact = min(exact, key=position, default=None)
        first_range = min(ranges, key=position, default=None)
        if first_range is None or first_range.last is None or first_range.seq is None:
            return first_exact
        if first_exact is not None and first_exact.seq is not None and first_exact.seq <= first_range.last:
            return first_exact
        return first_range

    def render(self) -> str:
        lines = [
            f"{self.source}: {self.entries} entries, {self.checkpoints} signed checkpoints,"
            f" tree size {self.tree_size}, root {self.root.hex() or '-'}",
            f"signing key sha256:{self.key_fingerprint}",
            *self.notes,
        ]
        if self.ok:
            lines.append("OK: every hash, signature and sequence number checks out")
            return "\n".join(lines)
        first = self.first_bad_entry
        lines.append(f"FAILED: {len(self.problems) + self.dropped} problem(s)")
        if first is not None:
            lines.append(f"first bad entry: {first}")
        lines.extend(f"  - {p}" for p in self.problems)
        if self.dropped:
            lines.append(f"  ... and {self.dropped} more")
        return "\n".join(lines)


class RootTracker:
    """Feeds leaves into a frontier and checks the root at every signed tree size on the way."""

    def __init__(self, report: VerifyReport, signed: list[Checkpoint], *, lines: bool = False) -> None:
        self.frontier = Frontier()
        self._report = report
        self._lines = lines  # in a complete bundle entry seq N sits on line N + 1
        self._signed: dict[int, list[Checkpoint]] = {}
        for cp in signed:
            self._signed.setdefault(cp.tree_size, []).append(cp)
        self._good = 0
        self._failed = False
        if 0 in self._signed:
            self._check()

    def add(self, leaf: bytes) -> None:
        self.frontier.append(leaf)
        if self.frontier.size in self._signed:
            self._check()

    def _check(self) -> None:
        size = self.frontier.size
        root = self.frontier.root()
        if all(cp.root == root for cp in self._signed[size]):
            self._good = size
        elif not self._failed:  # every later root fails too; only the first narrows the search
            self._failed = True
            self._report.fail(
                f"these entries do not hash to the root signed at tree size {size}"
                " (one of them was changed, added or removed)",
                seq=self._good,
                line=self._good + 1 if self._lines else None,
                last=size - 1,
            )


def _as_bytes(value: object) -> bytes:
    """A BLOB column's bytes, even if someone rewrote it as TEXT (its content is what gets checked)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


def verify_db(db_path: Path, key: Ed25519PublicKey, *, tick: Tick | None = None) -> VerifyReport:
    """Check an audit database against ``key``; read-only and inside one snapshot. ``tick`` hears how many
    entries are checked, of those the head claims."""
    report = VerifyReport(f"database {db_path}", key_fingerprint(key))
    if not db_path.is_file():
        report.fail("no such database file")
        return report
    conn = connect(db_path, readonly=True)
    try:
        conn.execute("BEGIN")
        _verify_db(conn, key, report, tick)
    except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
        report.fail(f"cannot read the audit tables: {exc}")
    finally:
        conn.close()
    return report


def _verify_db(conn: sqlite3.Connection, key: Ed25519PublicKey, report: VerifyReport, tick: Tick | None) -> None:
    stored = read_head(conn)
    head = stored.checkpoint
    checkpoints = read_checkpoints(conn)
    report.checkpoints = len(checkpoints)
    signed: list[Checkpoint] = []
    for cp in checkpoints:
        if cp.verify(key):
            signed.append(cp)
        else:
            report.fail(f"checkpoint at tree size {cp.tree_size}: signature does not verify")
    head_size = stored.frontier.size
    if head is None:
        if head_size:
            report.fail(f"the head claims {head_size} entries but carries no signature")
    elif not head.verify(key):
        report.fail(f"the signed head (tree size {head.tree_size}): signature does not verify")
    else:
        signed.append(head)
        report.root = head.root
    report.tree_size = head_size

    tracker = RootTracker(report, signed)
    expected = 0
    for _, row in ticking(read_entries(conn), tick, head_size):
        seq, columns, body, stored_leaf = row[0], row[1:7], _as_bytes(row[7]), _as_bytes(row[8])
        if seq != expected:
            report.fail(f"entries seq {expected}..{seq - 1} are missing", seq=expected)
        expected = seq + 1
        leaf = leaf_hash(body)
        try:
            entry = decode_entry(body)
        except EntryError as exc:
            report.fail(f"body is not a valid entry: {exc}", seq=seq)
        else:
            if entry.seq != seq:
                report.fail(f"body belongs at seq {entry.seq}: entries were moved or reordered", seq=seq)
            truth = (entry.at_text, entry.kind, entry.directive_id, entry.station_id, entry.message_id)
            if columns != (*truth, entry.signal_id):
                report.fail("index columns disagree with the entry body", seq=seq)
        if stored_leaf != leaf:
            report.fail("body does not match its stored leaf hash (the entry was edited)", seq=seq)
        tracker.add(leaf)
        report.entries += 1

    count = tracker.frontier.size
    if count < head_size:
        report.fail(f"the log ends at seq {count - 1} but the signed head covers {head_size} entries", seq=count)
    elif count > head_size:
        report.fail(f"entries from seq {head_size} on are not covered by the signed head", seq=head_size)
    elif stored.frontier.nodes != tracker.frontier.nodes:
        report.fail("the stored Merkle frontier does not match the entries (next appends would be wrong)")
    if checkpoints and checkpoints[-1].tree_size > head_size:
        report.fail(f"a checkpoint covers {checkpoints[-1].tree_size} entries, beyond the head's {head_size}")
