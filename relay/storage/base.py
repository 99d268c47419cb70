"""What the relay needs from a store of mailboxes, whatever the database behind it.

Invariants every backend keeps (the conformance suite in tests/relay checks them):

- cursors are per mailbox, 1, 2, 3… in commit order, without gaps, so a cursor
  says nothing about other mailboxes and ``more`` is just ``cursor < latest``;
- an append is all or nothing, idempotent per (writer, seq), and keeps each
  writer's seqs contiguous from 1;
- an expired mailbox is absent at once, whether or not it has been swept yet;
- an append is durable before ``append`` returns, and subscribers hear of it
  only after that;
- each writer's head (its last seq) is kept apart from its entries, so
  compaction can drop entries without making a retried old entry look new.

Cursor allocation needs one writer per mailbox at a time: SQLite has a single
writer anyway; PostgreSQL locks the mailbox row (``SELECT … FOR UPDATE``).
The rules of an append itself are shared by both backends (``appending``).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from carnet.protocol.envelope import Entry
from carnet.relay.storage.notify import CursorHub, Listener, Unsubscribe

Clock = Callable[[], float]


class StorageError(Exception):
    """Base of the refusals a backend reports; the server maps each to an HTTP status."""


class UnknownMailbox(StorageError):
    """No such mailbox (never created, erased or expired)."""


class MailboxConflict(StorageError):
    """The mailbox exists with other capability keys."""


class EntryConflict(StorageError):
    """Another entry is already stored at this (writer, seq)."""


class SeqGap(StorageError):
    """The entry does not follow its writer's last stored seq."""


class StorageUnavailable(StorageError):
    """The database failed to store the change (disk full, I/O error); nothing was stored."""


class QuotaExceeded(StorageError):
    """The append would take the mailbox past the relay's per-mailbox quota."""


class SchemaTooNew(StorageError):
    """The database was written by a newer version of the relay."""


class DataDirInUse(StorageError):
    """Another relay process already serves this data directory."""


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: bytes
    write_key: bytes
    read_key: bytes
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class StoredEntry:
    cursor: int
    writer: bytes
    seq: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Quota:
    """Per-mailbox ceilings on what is stored (entries kept, bytes of data); 0 = none."""

    max_entries: int = 0
    max_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Stats:
    """Aggregates only: nothing here identifies or sizes a single mailbox."""

    mailboxes: int
    entries: int
    bytes: int


def more_after(page: Sequence[StoredEntry], latest: int) -> bool:
    """Whether entries follow a page. Cursors only grow and compaction drops only a
    prefix, so whatever lies between a page's end and the latest cursor is more; an
    empty page means nothing is left after the requested cursor."""
    return bool(page) and page[-1].cursor < latest


class Storage(ABC):
    """Async interface of a relay backend, plus the subscription hook of ``CursorHub``."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self.hub = CursorHub()
        self.quota = Quota()  # set by the server from its configuration

    def subscribe(self, mailbox_id: bytes, listener: Listener) -> Unsubscribe:
        """Call `listener(latest)` after each commit that grows the mailbox, `(None)` once gone."""
        return self.hub.subscribe(mailbox_id, listener)

    def expires_at(self, ttl: int | None) -> float | None:
        return None if ttl is None else self.clock() + ttl

    @abstractmethod
    async def create_mailbox(
        self, mailbox_id: bytes, write_key: bytes, read_key: bytes, ttl: int | None = None
    ) -> bool:
        """Create the mailbox; False if it already exists with the same keys.

        Raises MailboxConflict if it exists with other keys. An expired mailbox
        does not exist: creating it again starts it afresh.
        """

    @abstractmethod
    async def get_mailbox(self, mailbox_id: bytes) -> Mailbox | None:
        """The live mailbox, or None (also when expired but not yet swept)."""

    @abstractmethod
    async def append(self, mailbox_id: bytes, entries: Sequence[Entry]) -> tuple[int, int]:
        """Store `entries` atomically; return (latest cursor, number newly stored).

        Raises UnknownMailbox, EntryConflict, SeqGap or QuotaExceeded, storing nothing.
        """

    @abstractmethod
    async def read(
        self, mailbox_id: bytes, after: int, limit: int, max_bytes: int
    ) -> tuple[list[StoredEntry], bool]:
        """Entries with cursor > `after`, at most `limit` and about `max_bytes` of data.

        A page holds at least one entry when any is left, however large.
        Returns the page and whether more entries follow it. Raises UnknownMailbox.
        """

    @abstractmethod
    async def latest_cursor(self, mailbox_id: bytes) -> int:
        """The mailbox's highest cursor (0 when empty). Raises UnknownMailbox."""

    @abstractmethod
    async def delete_mailbox(self, mailbox_id: bytes) -> bool:
        """Erase the mailbox and all its entries; False if there was none."""

    @abstractmethod
    async def compact(self, mailbox_id: bytes, before: int) -> int:
        """Erase the entries with cursor < `before`; return how many. Raises UnknownMailbox.

        Cursors, writer heads and the latest cursor stay: later appends and
        retries of compacted entries behave as if the entries were still there.
        """

    @abstractmethod
    async def sweep_expired(self, now: float | None = None) -> int:
        """Erase every mailbox whose expiry has passed; return how many."""

    @abstractmethod
    async def stats(self) -> Stats: ...

    @abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release the database; subscribers hear None. Idempotent."""
