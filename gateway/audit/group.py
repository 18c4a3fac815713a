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
from gateway.interfaces import AuditSink

__all__ = ["BatchAuditSink", "GroupCommit"]


class BatchAuditSink(AuditSink, Protocol):
    """An audit sink that can also record several entries in one durable transaction (gateway.audit.AuditLog)."""

    def append_many(self, entries: Sequence[AuditEntry]) -> list[int]: ...


class GroupCommit:
    """An audit sink (``append``, ``append_many``: durable on return) that also buffers (``later``).

    Buffered entries are written in order, in one transaction, on the next turn of the event loop, or earlier
    with the next durable write (ahead of it, in the same transaction), or on ``flush``. ``durable`` buffers too and
    returns once its entries are written.
    """

    def __init__(self, audit: BatchAuditSink) -> None:
        self._audit = audit
        self._entries: list[AuditEntry] = []
        self._hooks: list[Callable[[], None]] = []
        self._handle: asyncio.Handle | None = None
        #: Callers of ``durable`` waiting for the next write, with their (buffered) entries.
        self._waiting: list[tuple[asyncio.Future[None], tuple[AuditEntry, ...]]] = []

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

    async def durable(self, *entries: AuditEntry) -> None:
        """Entries on disk when this returns, like ``append_many``, but written with everything buffered in this turn
        of the event loop: many callers at once (a directive cleared from every station) share one transaction
        instead of one fsync each. Raises what the write raised; cancelled before the write, the entries are
        never written."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._entries.extend(entries)
        self._waiting.append((future, entries))
        self.schedule()
        try:
            await future
        except asyncio.CancelledError:
            if any(waiting is future for waiting, _ in self._waiting):  # not written yet
                self._waiting = [w for w in self._waiting if w[0] is not future]
                mine = {id(e) for e in entries}
                self._entries = [e for e in self._entries if id(e) not in mine]
            raise

    def _write(self, entries: Sequence[AuditEntry]) -> list[int]:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for hook in self._hooks:
            hook()
        buffered, self._entries = self._entries, []
        waiting, self._waiting = self._waiting, []
        if any(future.cancelled() for future, _ in waiting):  # their callers will not send what these record
            dropped = {id(e) for future, mine in waiting if future.cancelled() for e in mine}
            buffered = [e for e in buffered if id(e) not in dropped]
        if not buffered and not entries:
            return []
        try:
            seqs = self._audit.append_many([*buffered, *entries])
        except BaseException as exc:
            # Nothing was written: keep the buffer for the next try, but not the entries of durable callers, who
            # learn of the failure now (and so do not act on them).
            failed = {id(e) for _, mine in waiting for e in mine}
            self._entries = [e for e in buffered if id(e) not in failed] + self._entries
            for future, _ in waiting:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("audit write aborted"))
            raise
        for future, _ in waiting:
            if not future.done():
                future.set_result(None)
        return seqs[len(buffered) :]
