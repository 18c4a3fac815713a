"""Tampering with the database is detected every time, and the first bad entry is named."""

import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit import AuditEntry, AuditLog, Kind
from gateway.audit.checkpoint import load_public_key
from gateway.audit.entry import encode_entry
from gateway.audit.merkle import leaf_hash
from gateway.audit.verify import VerifyReport, verify_db
from tests.audit.conftest import T0, fill

DIRECTIVES = 10  # 9 entries each: 90 entries, a checkpoint after every story but the first
SIZE = 90


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A closed log of SIZE entries, to be copied before each tampering."""
    base = tmp_path_factory.mktemp("sealed")
    db, keys = base / "audit.sqlite", base / "certs"
    with AuditLog.open(db, keys, checkpoint_every=10) as log:
        fill(log, DIRECTIVES)
    assert not Path(f"{db}-wal").exists()
    return db, keys


def tampered(
    sealed: tuple[Path, Path], directory: Path, change: Callable[[sqlite3.Connection], object]
) -> VerifyReport:
    db = directory / "copy.sqlite"
    shutil.copy(sealed[0], db)
    conn = sqlite3.connect(db)
    for trigger in (
        "entries_no_update",
        "entries_no_delete",
        "checkpoints_no_update",
        "checkpoints_no_delete",
    ):
        conn.execute(f"DROP TRIGGER audit_{trigger}")
    change(conn)
    conn.commit()
    conn.close()
    return verify_db(db, load_public_key(sealed[1]))


def body_of(conn: sqlite3.Connection, seq: int) -> bytes:
    return bytes(conn.execute("SELECT body FROM audit_entries WHERE seq = ?", (seq,)).fetchone()[0])


def set_body(conn: sqlite3.Connection, seq: int, body: bytes, *, rehash: bool) -> None:
    conn.execute("UPDATE audit_entries SET body = ? WHERE seq = ?", (body, seq))
    if rehash:
        conn.execute("UPDATE audit_entries SET leaf_hash = ? WHERE seq = ?", (leaf_hash(body), seq))


def edit(seq: int, *, rehash: bool = False) -> Callable[[sqlite3.Connection], None]:
    def change(conn: sqlite3.Connection) -> None:
        set_body(conn, seq, body_of(conn, seq).replace(b"Accepted", b"Rejected"), rehash=rehash)

    return change


def delete(*seqs: int) -> Callable[[sqlite3.Connection], None]:
    def change(conn: sqlite3.Connection) -> None:
        conn.executemany("DELETE FROM audit_entries WHERE seq = ?", [(s,) for s in seqs])

    return change


def swap(a: int, b: int) -> Callable[[sqlite3.Connection], None]:
    def change(conn: sqlite3.Connection) -> None:
        body_a, body_b = body_of(conn, a), body_of(conn, b)
        set_body(conn, a, body_b, rehash=True)
        set_body(conn, b, body_a, rehash=True)

    return change


def insert_at(seq: int) -> Callable[[sqlite3.Connection], None]:
    """Shift entries seq.. up by one and put a well-formed entry of our own at ``seq``."""

    def change(conn: sqlite3.Connection) -> None:
        rows = conn.execute("SELECT * FROM audit_entries WHERE seq >= ? ORDER BY seq DESC", (seq,)).fetchall()
        conn.execute("DELETE FROM audit_entries WHERE seq >= ?", (seq,))
        conn.executemany("INSERT INTO audit_entries VALUES (?,?,?,?,?,?,?,?,?)", [(r[0] + 1, *r[1:]) for r in rows])
        body = encode_entry(seq, AuditEntry(Kind.OPERATOR_ACTION, {"by": "mallory"}, T0))
        conn.execute(
            "INSERT INTO audit_entries VALUES (?,?,?,?,?,?,?,?,?)",
            (
                seq,
                "2025-06-01T12:00:00.000Z",
                "operator.action",
                None,
                None,
                None,
                None,
                body,
                leaf_hash(body),
            ),
        )

    return change


def restamp(column: str, value: str, seq: int) -> Callable[[sqlite3.Connection], None]:
    def change(conn: sqlite3.Connection) -> None:
        conn.execute(f"UPDATE audit_entries SET {column} = ? WHERE seq = ?", (value, seq))

    return change


CASES = [
    ("edit", edit(22), 22),
    ("edit and fix up the stored leaf hash", edit(22, rehash=True), 18),  # narrowed to signed range 18..26
    ("delete", delete(40), 40),
    ("reorder", swap(30, 31), 30),
    ("truncate", delete(*range(85, SIZE)), 85),
    # A well-formed forgery at 50 matches its own row; the displaced original at 51 is the first proof.
    ("insert in the middle", insert_at(50), 51),
    ("insert at the end", lambda conn: insert_at(SIZE)(conn), SIZE),
    ("move to another station", restamp("station_id", "CS9", 12), 12),
    ("backdate", restamp("at", "2020-01-01T00:00:00.000Z", 3), 3),
]


@pytest.mark.parametrize(("change", "first_bad"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_tampering_is_detected_and_the_first_bad_entry_named(
    sealed: tuple[Path, Path], tmp_path: Path, change: Callable[[sqlite3.Connection], None], first_bad: int
) -> None:
    report = tampered(sealed, tmp_path, change)
    assert not report.ok
    assert report.first_bad_entry is not None
    assert report.first_bad_entry.seq == first_bad, report.render()
    assert f"first bad entry: seq {first_bad}" in report.render()


def test_untouched_log_verifies(sealed: tuple[Path, Path]) -> None:
    report = verify_db(sealed[0], load_public_key(sealed[1]))
    assert report.ok, report.render()
    assert (report.entries, report.tree_size, report.checkpoints) == (SIZE, SIZE, 9)


def test_wrong_key_fails_every_signature(sealed: tuple[Path, Path]) -> None:
    report = verify_db(sealed[0], Ed25519PrivateKey.generate().public_key())
    assert not report.ok
    assert "signature does not verify" in report.render()


def test_forged_checkpoint_or_head_fails(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    report = tampered(sealed, tmp_path, lambda c: c.execute("UPDATE audit_checkpoints SET time = '2030'"))
    assert "checkpoint at tree size 18: signature does not verify" in report.render()
    report = tampered(sealed, tmp_path, lambda c: c.execute("UPDATE audit_head SET tree_size = 80"))
    assert not report.ok


def test_a_missing_or_foreign_database_fails_cleanly(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    key = load_public_key(sealed[1])
    assert "no such database" in verify_db(tmp_path / "absent.sqlite", key).render()
    sqlite3.connect(tmp_path / "other.sqlite").execute("CREATE TABLE t (x)").connection.close()
    assert "cannot read the audit tables" in verify_db(tmp_path / "other.sqlite", key).render()


@st.composite
def any_tampering(draw: st.DrawFn) -> Callable[[sqlite3.Connection], None]:
    seq = draw(st.integers(0, SIZE - 1))
    match draw(st.sampled_from(["flip", "delete", "swap", "truncate", "insert", "duplicate"])):
        case "flip":
            offset, bits = draw(st.integers(0, 10_000)), draw(st.integers(1, 255))

            def flip(conn: sqlite3.Connection) -> None:
                body = bytearray(body_of(conn, seq))
                body[offset % len(body)] ^= bits
                set_body(conn, seq, bytes(body), rehash=draw(st.booleans()))

            return flip
        case "delete":
            return delete(seq)
        case "swap":
            other = draw(st.integers(0, SIZE - 1).filter(lambda s: s != seq))
            return swap(seq, other)
        case "truncate":
            return delete(*range(seq, SIZE))
        case "insert":
            return insert_at(seq)
        case _:

            def duplicate(conn: sqlite3.Connection) -> None:
                body = body_of(conn, seq)
                conn.execute(
                    "INSERT INTO audit_entries SELECT ?, at, kind, directive_id, station_id, message_id,"
                    " signal_id, body, leaf_hash FROM audit_entries WHERE seq = ?",
                    (SIZE, seq),
                )
                assert body_of(conn, SIZE) == body

            return duplicate


@settings(max_examples=60, deadline=None)
@given(any_tampering())
def test_any_edit_delete_reorder_truncate_or_insert_is_detected(
    sealed: tuple[Path, Path], change: Callable[[sqlite3.Connection], None]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        report = tampered(sealed, Path(tmp), change)
    assert not report.ok
    assert report.first_bad_entry is not None
