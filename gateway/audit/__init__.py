"""Tamper-evident audit log: canonical JSON entries in SQLite under an RFC 9162 Merkle tree.

The runtime appends one entry per step (``AuditLog.append``); ``dergw audit`` exports, verifies, shows
and reports. docs/audit.md describes the stored format and how to check it by hand.
"""

from gateway.audit.checkpoint import Checkpoint
from gateway.audit.entry import AuditEntry, Kind, StoredEntry
from gateway.audit.log import AuditLog

__all__ = ["AuditEntry", "AuditLog", "Checkpoint", "Kind", "StoredEntry"]
