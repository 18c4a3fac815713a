"""Export bundles verify offline, complete or filtered, and any change to one is detected."""

import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit import AuditLog
from gateway.audit.bundle import ENTRIES, ExportError, ExportFilter, export_bundle, verify_bundle
from gateway.audit.checkpoint import CheckpointError, load_public_key
from gateway.audit.entry import decode_entry
from gateway.audit.verify import VerifyReport
from tests.audit.conftest import T0, fill

SIZE = 90  # 10 directive stories of 9 entries


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("sealed")
    db, keys = base / "audit.sqlite", base / "certs"
    with AuditLog.open(db, keys, checkpoint_every=20) as log:
        fill(log, 10)
    return db, keys


def export(sealed: tuple[Path, Path], out: Path, flt: ExportFilter | None = None) -> Path:
    export_bundle(sealed[0], sealed[1], out, created=T0, flt=flt or ExportFilter())
    return out


def unpacked(bundle: Path, directory: Path) -> Path:
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(directory)
    return directory


def entries_of(bundle: Path) -> list[bytes]:
    with zipfile.ZipFile(bundle) as zf:
        return zf.read(ENTRIES).splitlines()


def test_complete_export_verifies(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    bundle = export(sealed, tmp_path / "all.zip")
    report = verify_bundle(bundle, load_public_key(sealed[1]))
    assert report.ok, report.render()
    assert (report.entries, report.tree_size, report.checkpoints) == (SIZE, SIZE, 5)
    with zipfile.ZipFile(bundle) as zf:
        assert set(zf.namelist()) == {
            "manifest.json",
            "manifest.sig",
            "public_key.pem",
            "checkpoints.jsonl",
            "consistency.jsonl",
            "entries.jsonl",
            "leaves.bin",
        }
        assert len(zf.read("consistency.jsonl").splitlines()) == 4
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["complete"] is True
    assert manifest["entry_count"] == SIZE


@pytest.mark.parametrize(
    ("flt", "expected_kinds"),
    [
        (ExportFilter(station_id="CS1"), {"command.sent", "station.answer"}),
        (
            ExportFilter(directive_id="D3"),
            {"signal.received", "directive.created", "allocation.decided", "command.sent", "station.answer",
             "upstream.sent"},
        ),
        (ExportFilter(directive_id="D3", station_id="CS4"), {"command.sent", "station.answer"}),
        (ExportFilter(since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4)), None),
    ],
)  # fmt: skip
def test_filtered_exports_verify_and_hold_what_was_asked(
    sealed: tuple[Path, Path], tmp_path: Path, flt: ExportFilter, expected_kinds: set[str] | None
) -> None:
    bundle = export(sealed, tmp_path / "part.zip", flt)
    report = verify_bundle(bundle, load_public_key(sealed[1]))
    assert report.ok, report.render()
    entries = [decode_entry(line) for line in entries_of(bundle)]
    assert 0 < len(entries) < SIZE
    assert report.tree_size == SIZE
    if flt.station_id:
        assert {e.station_id for e in entries} == {flt.station_id}
    if expected_kinds is not None:
        assert {e.kind for e in entries} == expected_kinds
    if flt.since and flt.until:
        assert all(flt.since <= e.at < flt.until for e in entries)


def test_a_pinned_key_must_match(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    """Someone with their own key can make a self-consistent bundle; only pinning the key exposes it."""
    db, keys = tmp_path / "forged.sqlite", tmp_path / "forger"
    with AuditLog.open(db, keys) as log:
        fill(log, 10)
    forged = export((db, keys), tmp_path / "forged.zip")
    assert verify_bundle(forged).ok
    report = verify_bundle(forged, load_public_key(sealed[1]))
    assert not report.ok
    assert "not the trusted key" in report.render()


def test_export_refuses_what_it_cannot_sign(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    with AuditLog.open(tmp_path / "empty.sqlite", tmp_path / "k"):
        pass
    with pytest.raises(ExportError, match="empty"):
        export_bundle(tmp_path / "empty.sqlite", tmp_path / "k", tmp_path / "x.zip", created=T0, flt=ExportFilter())
    with pytest.raises(ExportError, match="not signed by the key"):
        export_bundle(sealed[0], tmp_path / "k", tmp_path / "x.zip", created=T0, flt=ExportFilter())
    with pytest.raises(CheckpointError, match="cannot read"):
        export_bundle(sealed[0], tmp_path / "none", tmp_path / "x.zip", created=T0, flt=ExportFilter())
    assert not (tmp_path / "x.zip").exists()


def rewrite_entries(change: Callable[[list[bytes]], list[bytes]]) -> Callable[[Path], None]:
    def apply(directory: Path) -> None:
        path = directory / ENTRIES
        lines = path.read_bytes().splitlines()
        path.write_bytes(b"".join(line + b"\n" for line in change(lines)))

    return apply


def edit(i: int) -> Callable[[list[bytes]], list[bytes]]:
    return lambda lines: [*lines[:i], lines[i].replace(b"CS", b"XS"), *lines[i + 1 :]]


def delete(i: int) -> Callable[[list[bytes]], list[bytes]]:
    return lambda lines: [*lines[:i], *lines[i + 1 :]]


def swap(i: int) -> Callable[[list[bytes]], list[bytes]]:
    return lambda lines: [*lines[:i], lines[i + 1], lines[i], *lines[i + 2 :]]


def insert(i: int, source: int) -> Callable[[list[bytes]], list[bytes]]:
    return lambda lines: [*lines[:i], lines[source], *lines[i:]]


def truncate(n: int) -> Callable[[list[bytes]], list[bytes]]:
    return lambda lines: lines[:-n]


# (name, change to entries.jsonl, first bad line); line numbers are 1-based, lines[i] is line i + 1.
COMPLETE_CASES = [
    ("edit", edit(22), 23),
    ("delete", delete(40), 41),
    ("reorder", swap(30), 31),
    ("insert a copy", insert(11, 60), 12),
    ("truncate", truncate(3), SIZE - 2),
]
FILTERED_CASES = [
    ("edit", edit(2), 3),
    ("delete", delete(1), 2),
    ("reorder", swap(3), 4),
    ("insert a copy", insert(2, 5), 3),
]


def check(bundle: Path, tmp_path: Path, change: Callable[[Path], object], key_dir: Path) -> VerifyReport:
    directory = unpacked(bundle, tmp_path / "unpacked")
    change(directory)
    return verify_bundle(directory, load_public_key(key_dir))


@pytest.mark.parametrize(("change", "line"), [c[1:] for c in COMPLETE_CASES], ids=[c[0] for c in COMPLETE_CASES])
def test_tampering_a_complete_bundle_names_the_first_bad_entry(
    sealed: tuple[Path, Path], tmp_path: Path, change: Callable[[list[bytes]], list[bytes]], line: int
) -> None:
    report = check(export(sealed, tmp_path / "b.zip"), tmp_path, rewrite_entries(change), sealed[1])
    assert not report.ok
    assert report.first_bad_entry is not None
    assert report.first_bad_entry.line == line, report.render()
    assert "entries.jsonl does not match its hash in the signed manifest" in report.render()


@pytest.mark.parametrize(("change", "line"), [c[1:] for c in FILTERED_CASES], ids=[c[0] for c in FILTERED_CASES])
def test_tampering_a_filtered_bundle_names_the_first_bad_entry(
    sealed: tuple[Path, Path], tmp_path: Path, change: Callable[[list[bytes]], list[bytes]], line: int
) -> None:
    bundle = export(sealed, tmp_path / "b.zip", ExportFilter(station_id="CS2"))
    report = check(bundle, tmp_path, rewrite_entries(change), sealed[1])
    assert not report.ok
    assert report.first_bad_entry is not None
    assert report.first_bad_entry.line == line, report.render()


def test_dropping_the_last_entry_of_a_filtered_bundle_is_caught_by_the_signed_count(
    sealed: tuple[Path, Path], tmp_path: Path
) -> None:
    bundle = export(sealed, tmp_path / "b.zip", ExportFilter(station_id="CS2"))
    count = len(entries_of(bundle))

    def drop_last(directory: Path) -> None:
        rewrite_entries(truncate(1))(directory)
        proofs = directory / "proofs.jsonl"
        proofs.write_bytes(b"".join(line + b"\n" for line in proofs.read_bytes().splitlines()[:-1]))

    report = check(bundle, tmp_path, drop_last, sealed[1])
    assert f"the bundle holds {count - 1} entries, the signed manifest says {count}" in report.render()


def test_extra_missing_and_damaged_members_fail(sealed: tuple[Path, Path], tmp_path: Path) -> None:
    bundle = export(sealed, tmp_path / "b.zip")
    extra = check(bundle, tmp_path / "1", lambda d: (d / "notes.txt").write_text("hi"), sealed[1])
    assert "unexpected file notes.txt" in extra.render()
    missing = check(bundle, tmp_path / "2", lambda d: (d / "leaves.bin").unlink(), sealed[1])
    assert "leaves.bin is missing" in missing.render()
    with zipfile.ZipFile(bundle) as zf:  # flip a byte in the middle of the compressed entries
        info = zf.getinfo(ENTRIES)
    damaged = bytearray(bundle.read_bytes())
    damaged[info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2] ^= 0xFF
    (tmp_path / "damaged.zip").write_bytes(bytes(damaged))
    assert not verify_bundle(tmp_path / "damaged.zip").ok
    assert not verify_bundle(tmp_path / "nothing.zip").ok


@pytest.fixture(scope="module")
def templates(sealed: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("templates")
    return {
        "complete": unpacked(export(sealed, base / "c.zip"), base / "complete"),
        "filtered": unpacked(export(sealed, base / "f.zip", ExportFilter(directive_id="D4")), base / "filtered"),
    }


MEMBERS = [
    "manifest.json",
    "manifest.sig",
    "public_key.pem",
    "checkpoints.jsonl",
    "consistency.jsonl",
    ENTRIES,
]


@settings(max_examples=80, deadline=None)
@given(
    kind=st.sampled_from(["complete", "filtered"]),
    member=st.sampled_from([*MEMBERS, "leaves-or-proofs"]),
    offset=st.integers(0, 1_000_000),
    bits=st.integers(1, 255),
)
def test_any_single_byte_change_anywhere_in_a_bundle_is_detected(
    sealed: tuple[Path, Path], templates: dict[str, Path], kind: str, member: str, offset: int, bits: int
) -> None:
    if member == "leaves-or-proofs":
        member = "leaves.bin" if kind == "complete" else "proofs.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "bundle"
        shutil.copytree(templates[kind], directory)
        path = directory / member
        data = bytearray(path.read_bytes())
        data[offset % len(data)] ^= bits
        path.write_bytes(bytes(data))
        assert not verify_bundle(directory).ok
        assert not verify_bundle(directory, load_public_key(sealed[1])).ok
