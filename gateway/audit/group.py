"""Group commit of audit entries: what the gateway records in one turn of the event loop goes to disk in one
transaction (one fsync) at the start of the next, and an entry that must be durable before the caller goes on
(``append`` / ``append_many``) is written in the same transaction as everything buffered before it.

The dispatcher (station answers, outcomes) and the fleet registry (station connected, booted, capabilities) share
one ``GroupCommit``, so the audit keeps the order in which things happened across both: every durable write goes
after everything buffered before it. State the audit follows (the dispatcher's buffered outcomes in the store) is
written by ``before_flush`` hooks ahead of the entries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from gateway.audit.entry import AuditEntry

__all__ = ["BatchAuditSink", "GroupCommit"]


class _Sink(Protocol):
    def append(
        self,
        kind: str,
        data: Mapping[str, Any],
        *,
        at: datetime,
        directive_id: str | None = None,
        station_id: str | None = None,
        message_id: str | None = None,
        signal_id: str | None = None,
    ) -> int: ...


class BatchAuditSink(_Sink, Protocol):
    """An audit sink that can also record several entries in one durable transaction (gateway.audit.AuditLog)."""

    def append_many(self, entries: Sequence[AuditEntry]) -> list[int]: ...


class GroupCommit:
    """An audit sink (``append``, ``append_many``: durable on return) that also buffers (``later``).

    Buffered entries are written in order, in one transaction, on the next turn of the event loop, or earlier
    with the next durable write (ahead of it, in the same transaction), or on ``flush``.
    """

    def __init__(self, audit: BatchAuditSink) -> None:
        self._audit = audit
        self._entries: list[AuditEntry] = []
        self._hooks: list[Callable[[], None]] = []
        self._handle: asyncio.Handle | None = None

    @classmethod
    def over(cls, audit: BatchAuditSink | GroupCommit) -> GroupCommit:
        """`audit` itself when it already groups (shared by the parts of one gateway), else a new group over it."""
        return audit if isinstance(audit, GroupCommit) else cls(audit)

    def before_flush(self, hook: Callable[[], None]) -> None:
        """Call `hook` at every flush, before the buffered entries are written (state the audit follows)."""
        self._hooks.append(hook)

    def later(self, *entries: AuditEntry, schedule: bool = True) -> None:
        """Buffer entries; with `schedule` (else see ``schedule``) they are written on the next turn of the loop."""
        self._entries.extend(entries)
        if schedule:
            self.schedule()

    def schedule(self) -> None:
        """Flush on the next turn of the event loop (also what a ``before_flush`` hook has buffered)."""
        if self._handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (a script, a test): nothing to group with
                self.flush()
                return
            self._handle = loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what is buffered now: hooks first, then the entries in one transaction."""
        self._write(())

    def append(
        self,
        kind: str,
        data: Mapping[str, Any],
        *,
        at: datetime,
        directive_id: str | None = None,
        station_id: str | None = None,
        message_id: str | None = None,
        signal_id: str | None = None,
    ) -> int:
        """One entry, on disk when this returns, after (and with) everything buffered before it."""
        entry = AuditEntry(kind, data, at, directive_id, station_id, message_id, signal_id)
        return self._write([entry])[0]

    def append_many(self, entries: Sequence[AuditEntry]) -> list[int]:
        """Entries on disk when this returns, after (and in one transaction with) everything buffered before."""
        return self._write(entries)

    def _write(self, entries: Sequence[AuditEntry]) -> list[int]:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for hook in self._hooks:
            hook()
        buffered, self._entries = self._entries, []
        if not buffered and not entries:
            return []
        try:
            seqs = self._audit.append_many([*buffered, *entries])
        except BaseException:
            self._entries = buffered + self._entries  # nothing was written: keep the buffer for the next try
            raise
        return seqs[len(buffered) :]
