"""Export bundles: a self-contained, offline-verifiable extract of the audit log.

A bundle is a ZIP archive (or the directory it unpacks to) holding::

    manifest.json       canonical JSON: format, origin, filter, tree size and root of the anchor
                        checkpoint, entry count, key fingerprint, SHA-256 of every other member
    manifest.sig        raw 64-byte Ed25519 signature over manifest.json
    public_key.pem      the audit public key (SubjectPublicKeyInfo PEM)
    checkpoints.jsonl   signed checkpoints up to the anchor, which is the last line and covers
                        every exported entry
    consistency.jsonl   RFC 9162 consistency proof from each earlier checkpoint to the anchor
    entries.jsonl       exported entries, each line exactly the canonical bytes that were hashed
    leaves.bin          complete exports: all leaf hashes of the anchor tree, 32 raw bytes each
    proofs.jsonl        filtered exports: one inclusion proof per entry against the anchor

A complete export lets the verifier recompute every signed root from ``leaves.bin`` and then match
each entry to its leaf, so a bad entry is named exactly. A filtered export (--directive, --station,
--since, --until) carries one inclusion proof per entry instead, so it stays small yet every entry is
still proven to sit at its sequence number in the signed tree; the signed manifest fixes which and
how many entries were exported, so dropping one is detected too. What a filtered export cannot prove
is that the filter missed nothing: a Merkle tree commits to content, not to queries over it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit.canonical import CanonicalError, canonical_bytes, parse_json
from gateway.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    Signer,
    key_fingerprint,
    public_key_from_pem,
    public_key_pem,
)
from gateway.audit.entry import EntryError, StoredEntry, decode_entry, format_time
from gateway.audit.log import (
    connect,
    directive_trail,
    read_checkpoints,
    read_head,
    read_leaf_hashes,
    select_entries,
)
from gateway.audit.merkle import HASH_SIZE, MerkleTree, leaf_hash, verify_consistency, verify_inclusion
from gateway.audit.verify import RootTracker, VerifyReport
from gateway.progress import Tick, ticking

__all__ = ["BUNDLE_FORMAT", "ExportError", "ExportFilter", "ExportResult", "export_bundle", "verify_bundle"]

BUNDLE_FORMAT = "dergw-audit-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public_key.pem"
CHECKPOINTS = "checkpoints.jsonl"
CONSISTENCY = "consistency.jsonl"
ENTRIES = "entries.jsonl"
LEAVES = "leaves.bin"
PROOFS = "proofs.jsonl"
_MANIFEST_FIELDS = {
    "format",
    "origin",
    "created",
    "complete",
    "filter",
    "tree_size",
    "root",
    "entry_count",
    "key_fingerprint",
    "files",
}


class ExportError(RuntimeError):
    """The log cannot be exported as asked."""


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """Which entries to export; all None means the complete log. Filters combine with AND."""

    directive_id: str | None = None
    station_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def complete(self) -> bool:
        return self == ExportFilter()

    def to_json(self) -> dict[str, str | None]:
        return {
            "directive_id": self.directive_id,
            "station_id": self.station_id,
            "since": None if self.since is None else format_time(self.since),
            "until": None if self.until is None else format_time(self.until),
        }


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    entries: int
    tree_size: int
    complete: bool


def _jsonl(objects: list[dict[str, Any]]) -> bytes:
    return b"".join(canonical_bytes(o) + b"\n" for o in objects)


def _select(conn: sqlite3.Connection, flt: ExportFilter, size: int) -> list[StoredEntry]:
    """Entries matching the filter; --directive follows the directive's trail (signals, answers)."""
    if flt.directive_id is None:
        chosen = select_entries(conn, station_id=flt.station_id, since=flt.since, until=flt.until)
    else:
        since = None if flt.since is None else format_time(flt.since)
        until = None if flt.until is None else format_time(flt.until)
        chosen = [
            e
            for e in directive_trail(conn, flt.directive_id)
            if (flt.station_id is None or e.station_id == flt.station_id)
            and (since is None or e.at_text >= since)
            and (until is None or e.at_text < until)
        ]
    return [e for e in chosen if e.seq < size]


def export_bundle(
    db_path: Path, key_dir: Path, out: Path, *, created: datetime, flt: ExportFilter, tick: Tick | None = None
) -> ExportResult:
    """Write a bundle of the entries ``flt`` selects, anchored at the log's latest signed head; ``tick`` hears
    how many entries are written."""
    signer = Signer.load(key_dir)
    if not db_path.is_file():
        raise ExportError(f"no database at {db_path}")
    conn = connect(db_path, readonly=True)
    try:
        conn.execute("BEGIN")  # one snapshot: the gateway may keep appending meanwhile
        head = read_head(conn).checkpoint
        if head is None:
            raise ExportError("the audit log is empty")
        if not head.verify(signer.public_key):
            raise ExportError(f"the log's head is not signed by the key in {key_dir}")
        size = head.tree_size
        checkpoints = read_checkpoints(conn, upto=size)
        if not checkpoints or checkpoints[-1].tree_size != size:
            checkpoints.append(head)
        leaves = read_leaf_hashes(conn, size)
        if len(leaves) != size:
            raise ExportError(f"the head covers {size} entries but {len(leaves)} are stored; run verify")
        tree = MerkleTree(leaves)
        members: dict[str, bytes] = {
            PUBLIC_KEY: public_key_pem(signer.public_key),
            CHECKPOINTS: _jsonl([cp.to_json() for cp in checkpoints]),
            CONSISTENCY: _jsonl(
                [
                    {
                        "from": cp.tree_size,
                        "to": size,
                        "path": [h.hex() for h in tree.consistency_proof(cp.tree_size, size)],
                    }
                    for cp in checkpoints[:-1]
                ]
            ),
        }
        if flt.complete:
            members[LEAVES] = b"".join(leaves)
            bodies = (
                bytes(body)
                for (body,) in conn.execute("SELECT body FROM audit_entries WHERE seq < ? ORDER BY seq", (size,))
            )
            count = size
        else:
            chosen = _select(conn, flt, size)
            members[PROOFS] = _jsonl(
                [{"seq": e.seq, "path": [h.hex() for h in tree.inclusion_proof(e.seq, size)]} for e in chosen]
            )
            bodies = (e.body for e in chosen)
            count = len(chosen)
        return _write_zip(out, members, bodies, signer, head, created, flt, count, tick)
    finally:
        conn.close()


def _write_zip(
    out: Path,
    members: dict[str, bytes],
    bodies: Iterator[bytes],
    signer: Signer,
    head: Checkpoint,
    created: datetime,
    flt: ExportFilter,
    count: int,
    tick: Tick | None,
) -> ExportResult:
    """Stream the entries, then sign the manifest over every member's hash; rename into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".audit-export-", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            digest = hashlib.sha256()
            with zf.open(ENTRIES, "w") as handle:
                for _, body in ticking(bodies, tick, count):
                    line = body + b"\n"
                    digest.update(line)
                    handle.write(line)
            hashes = {ENTRIES: digest.hexdigest()}
            for name, data in members.items():
                zf.writestr(name, data)
                hashes[name] = hashlib.sha256(data).hexdigest()
            manifest = canonical_bytes(
                {
                    "format": BUNDLE_FORMAT,
                    "origin": head.origin,
                    "created": format_time(created),
                    "complete": flt.complete,
                    "filter": flt.to_json(),
                    "tree_size": head.tree_size,
                    "root": head.root.hex(),
                    "entry_count": count,
                    "key_fingerprint": key_fingerprint(signer.public_key),
                    "files": dict(sorted(hashes.items())),
                }
            )
            zf.writestr(MANIFEST, manifest)
            zf.writestr(SIGNATURE, signer.sign_bytes(manifest))
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ExportResult(out, count, head.tree_size, flt.complete)


class _Bundle:
    """Read members from a bundle ZIP or from the directory it was unpacked into."""

    def __init__(self, path: Path) -> None:
        self._dir = path if path.is_dir() else None
        self._zip = None if self._dir else zipfile.ZipFile(path)

    def names(self) -> set[str]:
        if self._dir is not None:
            return {p.name for p in self._dir.iterdir()}
        assert self._zip is not None
        return set(self._zip.namelist())

    def open(self, name: str) -> IO[bytes]:
        if self._dir is not None:
            return (self._dir / name).open("rb")
        assert self._zip is not None
        return self._zip.open(name)

    def read(self, name: str) -> bytes:
        with self.open(name) as handle:
            return handle.read()

    def sha256(self, name: str) -> str:
        digest = hashlib.sha256()
        with self.open(name) as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _canonical_json(data: bytes) -> Any:
    """Parse one bundle JSON document and insist it is in canonical form (so its bytes are unique)."""
    value = parse_json(data)
    if canonical_bytes(value) != data:
        raise ValueError("not in canonical form")
    return value


def _jsonl_lines(data: bytes, name: str) -> list[Any]:
    if data and not data.endswith(b"\n"):
        raise ValueError(f"{name} does not end with a newline")
    return [_canonical_json(line) for line in data.split(b"\n")[:-1]]


def verify_bundle(path: Path, pinned: Ed25519PublicKey | None = None, *, tick: Tick | None = None) -> VerifyReport:
    """Check a bundle offline. ``pinned`` is the key the auditor trusts; without it the bundle's own
    key is used, and only the fingerprint in the report ties the result to the operator's key. ``tick`` hears
    how many entries are checked."""
    report = VerifyReport(f"bundle {path}", "-")
    try:
        bundle = _Bundle(path)
    except (OSError, zipfile.BadZipFile) as exc:
        report.fail(f"cannot open the bundle: {exc}")
        return report
    try:
        _verify_bundle(bundle, pinned, report, tick)
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        report.fail(f"the bundle archive is damaged: {exc}")
    except (TypeError, KeyError, ValueError) as exc:
        report.fail(f"the bundle is malformed: {exc!r}")
    finally:
        bundle.close()
    return report


def _verify_bundle(
    bundle: _Bundle, pinned: Ed25519PublicKey | None, report: VerifyReport, tick: Tick | None = None
) -> None:
    names = bundle.names()
    for needed in (MANIFEST, SIGNATURE, PUBLIC_KEY):
        if needed not in names:
            report.fail(f"{needed} is missing")
            return
    manifest_bytes = bundle.read(MANIFEST)
    try:
        manifest = _canonical_json(manifest_bytes)
        if not isinstance(manifest, dict) or set(manifest) != _MANIFEST_FIELDS:
            raise ValueError("wrong or missing fields")
        if manifest["format"] != BUNDLE_FORMAT:
            raise ValueError(f"unknown format {manifest['format']!r}")
        key = public_key_from_pem(bundle.read(PUBLIC_KEY))
    except (ValueError, CanonicalError, CheckpointError) as exc:
        report.fail(f"{MANIFEST} or {PUBLIC_KEY} unusable: {exc}")
        return
    report.key_fingerprint = key_fingerprint(key)
    if public_key_pem(key) != bundle.read(PUBLIC_KEY):
        report.fail(f"{PUBLIC_KEY} is not in its canonical PEM form")
    if pinned is not None and key_fingerprint(pinned) != report.key_fingerprint:
        report.fail(f"the bundle is signed by key sha256:{report.key_fingerprint}, not the trusted key")
    if manifest["key_fingerprint"] != report.key_fingerprint:
        report.fail(f"the manifest names a different key than {PUBLIC_KEY}")
    try:
        key.verify(bundle.read(SIGNATURE), manifest_bytes)
    except InvalidSignature:
        report.fail("the manifest signature does not verify: the manifest or the key was altered")

    complete = manifest["complete"] is True
    expected = {
        MANIFEST,
        SIGNATURE,
        PUBLIC_KEY,
        CHECKPOINTS,
        CONSISTENCY,
        ENTRIES,
        LEAVES if complete else PROOFS,
    }
    for name in sorted(names - expected):
        report.fail(f"unexpected file {name} in the bundle")
    for name in sorted(expected - names):
        report.fail(f"{name} is missing")
    if expected - names:
        return
    for name in sorted(expected - {MANIFEST, SIGNATURE}):
        if bundle.sha256(name) != manifest["files"].get(name):
            report.fail(f"{name} does not match its hash in the signed manifest")

    checkpoints = _verify_checkpoints(bundle, key, manifest, report)
    if not checkpoints:
        return
    anchor = checkpoints[-1]
    report.tree_size, report.root = anchor.tree_size, anchor.root
    scope = "the complete log" if complete else f"entries matching {json.dumps(manifest['filter'])}"
    report.notes.append(f"export of {scope}, created {manifest['created']}")
    if complete:
        _verify_complete(bundle, checkpoints, report, tick)
    else:
        _verify_filtered(bundle, anchor, manifest["entry_count"], report, tick)


def _verify_checkpoints(
    bundle: _Bundle, key: Ed25519PublicKey, manifest: dict[str, Any], report: VerifyReport
) -> list[Checkpoint]:
    """Every checkpoint signed, sizes increasing, each consistent with the anchor (the last one)."""
    try:
        checkpoints = [Checkpoint.from_json(raw) for raw in _jsonl_lines(bundle.read(CHECKPOINTS), CHECKPOINTS)]
        consistency = _jsonl_lines(bundle.read(CONSISTENCY), CONSISTENCY)
    except (ValueError, CanonicalError) as exc:
        report.fail(f"checkpoints unreadable: {exc}")
        return []
    report.checkpoints = len(checkpoints)
    if not checkpoints:
        report.fail("the bundle holds no checkpoint")
        return []
    anchor = checkpoints[-1]
    if (anchor.tree_size, anchor.root.hex()) != (manifest["tree_size"], manifest["root"]):
        report.fail("the last checkpoint is not the anchor named in the manifest")
    sizes = [cp.tree_size for cp in checkpoints]
    if sizes != sorted(set(sizes)):
        report.fail("checkpoint tree sizes are not strictly increasing")
    for cp in checkpoints:
        if not cp.verify(key):
            report.fail(f"checkpoint at tree size {cp.tree_size}: signature does not verify")
    if len(consistency) != len(checkpoints) - 1:
        report.fail("there is not exactly one consistency proof per earlier checkpoint")
    for cp, proof in zip(checkpoints[:-1], consistency, strict=False):
        path = [bytes.fromhex(h) for h in proof["path"]]
        if (proof["from"], proof["to"]) != (cp.tree_size, anchor.tree_size) or not verify_consistency(
            cp.tree_size, anchor.tree_size, cp.root, anchor.root, path
        ):
            report.fail(f"checkpoint at tree size {cp.tree_size} is not proven consistent with the anchor")
    return checkpoints


def _entry_lines(
    bundle: _Bundle, report: VerifyReport, tick: Tick | None = None, total: int = 0
) -> Iterator[tuple[int, bytes]]:
    """(line number, entry bytes) for each line of entries.jsonl, streamed; ``tick`` hears of each
    `TICK_EVERY` lines checked, of ``total``."""
    with bundle.open(ENTRIES) as handle:
        for number, line in ticking(handle, tick, total):
            if not line.endswith(b"\n"):
                report.fail("the last line is cut short (no newline)", line=number)
            yield number, line.rstrip(b"\n")


def _decode(body: bytes, line: int, seq: int | None, report: VerifyReport) -> StoredEntry | None:
    try:
        return decode_entry(body)
    except EntryError as exc:
        report.fail(f"not a valid entry: {exc}", seq=seq, line=line)
        return None


def _verify_complete(
    bundle: _Bundle, checkpoints: list[Checkpoint], report: VerifyReport, tick: Tick | None = None
) -> None:
    """Recompute every signed root from leaves.bin, then match entry N to leaf N."""
    size = checkpoints[-1].tree_size
    blob = bundle.read(LEAVES)
    leaves = [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]
    if len(blob) != size * HASH_SIZE:
        report.fail(f"{LEAVES} holds {len(blob) / HASH_SIZE:g} leaf hashes, the anchor covers {size}")
    tracker = RootTracker(report, checkpoints, lines=True)
    for leaf in leaves:
        tracker.add(leaf)
    count = 0
    for line, body in _entry_lines(bundle, report, tick, size):
        seq = line - 1
        count = line
        entry = _decode(body, line, seq, report)
        if entry is not None and entry.seq != seq:
            report.fail(f"holds seq {entry.seq}: entries were deleted, inserted or reordered", seq=seq, line=line)
        if seq >= size:
            report.fail(f"entry beyond the {size} the anchor checkpoint covers", seq=seq, line=line)
        elif seq < len(leaves) and leaf_hash(body) != leaves[seq]:
            report.fail("does not match the leaf hash the signed tree holds for this seq", seq=seq, line=line)
    report.entries = count
    if count < size:
        report.fail(
            f"entries end after seq {count - 1}; the anchor covers {size}: truncated",
            seq=count,
            line=count + 1,
        )


def _verify_filtered(
    bundle: _Bundle, anchor: Checkpoint, signed_count: int, report: VerifyReport, tick: Tick | None = None
) -> None:
    """Each entry's inclusion proof against the anchor, sequence numbers strictly increasing."""
    try:
        proofs = _jsonl_lines(bundle.read(PROOFS), PROOFS)
    except (ValueError, CanonicalError) as exc:
        report.fail(f"{PROOFS} unreadable: {exc}")
        return
    previous = -1
    count = 0
    for line, body in _entry_lines(bundle, report, tick, signed_count):
        count = line
        proof = proofs[line - 1] if line <= len(proofs) else None
        entry = _decode(body, line, None if proof is None else proof["seq"], report)
        seq = entry.seq if entry is not None else None if proof is None else proof["seq"]
        if entry is not None:
            if entry.seq <= previous:
                report.fail("out of order or repeated (sequence numbers must increase)", seq=seq, line=line)
            previous = entry.seq
        if proof is None:
            report.fail("has no inclusion proof", seq=seq, line=line)
            continue
        path = [bytes.fromhex(h) for h in proof["path"]]
        if proof["seq"] != seq or not verify_inclusion(
            proof["seq"], anchor.tree_size, leaf_hash(body), path, anchor.root
        ):
            report.fail("is not proven to be this entry of the signed tree (edited or moved)", seq=seq, line=line)
    report.entries = count
    if len(proofs) != count:
        report.fail(f"{len(proofs)} inclusion proofs for {count} entries")
    if count != signed_count:
        report.fail(f"the bundle holds {count} entries, the signed manifest says {signed_count}", line=count + 1)
