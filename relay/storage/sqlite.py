"""The embedded backend: one SQLite file in the data directory, written by one process.

Statements are plain synchronous sqlite3 calls inside the async methods: each
takes microseconds, less than a hop to a thread would. The exception is
COMMIT, whose fsync (``synchronous=FULL``: an acknowledged entry survives
power loss) takes 0.2 to 2 ms, and would stall every request meanwhile. So:

- *group commit*: the writes of all requests that arrive while no commit is
  running share one transaction, each inside its own SAVEPOINT (all or nothing
  per request), and return only once that transaction is durable;
- the COMMIT runs on one dedicated thread (sqlite3 releases the GIL), so the
  event loop goes on parsing and verifying the next requests, which form the
  next group; under load, groups grow and the fsync cost per entry shrinks;
- reads use a second connection, which in WAL mode sees committed data only,
  so nobody is ever served an entry that is not yet durable, and reads never
  wait for a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from carnet.protocol.envelope import Entry
from carnet.relay.storage.appending import Key, Totals, check_duplicates, plan_append
from carnet.relay.storage.base import (
    Clock,
    DataDirInUse,
    Mailbox,
    MailboxConflict,
    Stats,
    Storage,
    StorageError,
    StorageUnavailable,
    StoredEntry,
    UnknownMailbox,
    more_after,
)
from carnet.relay.storage.schema import SCHEMA_VERSION, migrate

DB_NAME = "relay.sqlite3"
LOCK_NAME = "relay.lock"
# Mailboxes erased per sweep transaction, so a large sweep never stalls requests for long.
SWEEP_BATCH = 64
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_KEYS = "SELECT write_key, read_key, expires_at FROM mailboxes WHERE id = ?"

Notice = tuple[bytes, int | None]


class SqliteStorage(Storage):
    def __init__(
        self,
        writer: sqlite3.Connection,
        reader: sqlite3.Connection,
        clock: Clock = time.time,
        lock_fd: int | None = None,
    ) -> None:
        super().__init__(clock)
        self._conn = writer
        self._reader = reader
        self._lock_fd = lock_fd
        self._closed = False
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="carnet-relay-commit")
        self._committing: asyncio.Future[None] | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._notices: list[Notice] = []

    @classmethod
    def open(cls, data_dir: Path, clock: Clock = time.time) -> SqliteStorage:
        """Open (creating and migrating) the relay database; one process per data directory."""
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise DataDirInUse(f"another carnet-relay is using {data_dir}") from None
        uri = (data_dir / DB_NAME).resolve().as_uri()
        try:
            writer = _connect(uri)
            writer.execute("PRAGMA journal_mode = WAL")
            writer.execute("PRAGMA synchronous = FULL")
            migrate(writer)
            reader = _connect(uri)
            reader.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            os.close(lock_fd)
            raise StorageError(f"cannot open {data_dir / DB_NAME}: {exc}") from None
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(writer, reader, clock, lock_fd)

    @classmethod
    def open_readonly(cls, data_dir: Path) -> SqliteStorage:
        """Open for reading aggregates next to a running relay (WAL lets both proceed)."""
        path = data_dir / DB_NAME
        if not path.is_file():
            raise StorageError(f"no relay database in {data_dir}")
        try:
            conn = _connect(path.resolve().as_uri() + "?mode=ro")
            (version,) = _one(conn, "PRAGMA user_version")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read {path}: {exc}") from None
        if version != SCHEMA_VERSION:
            conn.close()
            raise StorageError(f"{path} has schema {version}, this relay reads {SCHEMA_VERSION}")
        return cls(conn, conn)

    # -- group commit ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _group(self) -> AsyncIterator[sqlite3.Connection]:
        """One request's writes, in the open group; returns once the group is durable.

        An exception undoes this request's writes only and is raised at once.
        """
        while self._committing is not None:  # the writer connection is busy committing
            await asyncio.wait([self._committing])
        conn = self._conn
        try:
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
                asyncio.get_running_loop().call_soon(self._start_commit)
            conn.execute("SAVEPOINT request")
        except sqlite3.Error as exc:
            raise StorageUnavailable(str(exc)) from None
        try:
            yield conn
        except BaseException as exc:
            conn.execute("ROLLBACK TO request")
            conn.execute("RELEASE request")
            if isinstance(exc, sqlite3.Error):
                raise StorageUnavailable(str(exc)) from None
            raise
        conn.execute("RELEASE request")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def _start_commit(self) -> None:
        """Commit the open group on the committer thread (scheduled when the group opens)."""
        if self._committing is not None or not self._conn.in_transaction:
            return
        waiters, self._waiters = self._waiters, []
        notices, self._notices = self._notices, []
        loop = asyncio.get_running_loop()
        self._committing = loop.run_in_executor(self._committer, _commit, self._conn)
        self._committing.add_done_callback(lambda done: self._finish_commit(done, waiters, notices))

    def _finish_commit(
        self, done: asyncio.Future[None], waiters: list[asyncio.Future[None]], notices: list[Notice]
    ) -> None:
        self._committing = None
        failure = done.exception()
        for waiter in waiters:
            if waiter.done():
                continue  # the request was cancelled; its writes are durable anyway
            if failure is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(StorageUnavailable(str(failure)))
        if failure is None:
            for mailbox_id, cursor in notices:
                self.hub.publish(mailbox_id, cursor)

    def _erase(self, conn: sqlite3.Connection, mailbox_id: bytes) -> None:
        conn.execute("DELETE FROM entries WHERE mailbox = ?", (mailbox_id,))
        conn.execute("DELETE FROM heads WHERE mailbox = ?", (mailbox_id,))
        conn.execute("DELETE FROM mailboxes WHERE id = ?", (mailbox_id,))
        self._notices.append((mailbox_id, None))

    # -- Storage ----------------------------------------------------------------------

    async def create_mailbox(
        self, mailbox_id: bytes, write_key: bytes, read_key: bytes, ttl: int | None = None
    ) -> bool:
        async with self._group() as conn:
            row = _one(conn, _KEYS, (mailbox_id,))
            created = row is None or not _live(row[2], self.clock())
            if not created:
                if (row[0], row[1]) != (write_key, read_key):
                    raise MailboxConflict("the mailbox exists with other keys")
            else:
                if row is not None:
                    self._erase(conn, mailbox_id)  # expired, not yet swept: start afresh
                conn.execute(
                    "INSERT INTO mailboxes (id, write_key, read_key, expires_at)"
                    " VALUES (?, ?, ?, ?)",
                    (mailbox_id, write_key, read_key, self.expires_at(ttl)),
                )
        return created

    async def get_mailbox(self, mailbox_id: bytes) -> Mailbox | None:
        row = _one(self._reader, _KEYS, (mailbox_id,))
        if row is None or not _live(row[2], self.clock()):
            return None
        return Mailbox(mailbox_id, row[0], row[1], row[2])

    async def append(self, mailbox_id: bytes, entries: Sequence[Entry]) -> tuple[int, int]:
        async with self._group() as conn:
            before = Totals(*self._live_row(conn, "latest, entries, bytes", mailbox_id))
            writers = list({entry.writer: None for entry in entries})
            heads = dict(
                conn.execute(
                    "SELECT writer, seq FROM heads WHERE mailbox = ?"
                    f" AND writer IN ({', '.join('?' * len(writers))})",
                    (mailbox_id, *writers),
                ).fetchall()
            )
            plan = plan_append(entries, before, heads, self.quota)
            check_duplicates(plan.duplicates, self._stored(conn, mailbox_id, plan.duplicates))
            if plan.rows:
                conn.executemany(
                    "INSERT INTO entries (mailbox, cursor, writer, seq, data)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(mailbox_id, r.cursor, r.writer, r.seq, r.data) for r in plan.rows],
                )
                conn.executemany(
                    "INSERT INTO heads (mailbox, writer, seq) VALUES (?, ?, ?)"
                    " ON CONFLICT (mailbox, writer) DO UPDATE SET seq = excluded.seq",
                    [(mailbox_id, writer, seq) for writer, seq in plan.heads.items()],
                )
                totals = plan.totals
                conn.execute(
                    "UPDATE mailboxes SET latest = ?, entries = ?, bytes = ? WHERE id = ?",
                    (totals.latest, totals.entries, totals.bytes, mailbox_id),
                )
                self._notices.append((mailbox_id, totals.latest))
        return plan.totals.latest, plan.appended

    @staticmethod
    def _stored(
        conn: sqlite3.Connection, mailbox_id: bytes, duplicates: Sequence[Entry]
    ) -> dict[Key, bytes]:
        stored: dict[Key, bytes] = {}
        for entry in duplicates:  # retries only: rare, and each an indexed lookup
            row = _one(
                conn,
                "SELECT data FROM entries WHERE mailbox = ? AND writer = ? AND seq = ?",
                (mailbox_id, entry.writer, entry.seq),
            )
            if row is not None:
                stored[(entry.writer, entry.seq)] = row[0]
        return stored

    async def read(
        self, mailbox_id: bytes, after: int, limit: int, max_bytes: int
    ) -> tuple[list[StoredEntry], bool]:
        # One transaction, so `latest` and the page come from the same snapshot.
        with _snapshot(self._reader) as conn:
            (latest,) = self._live_row(conn, "latest", mailbox_id)
            page: list[StoredEntry] = []
            total = 0
            rows = conn.execute(
                "SELECT cursor, writer, seq, data FROM entries"
                " WHERE mailbox = ? AND cursor > ? ORDER BY cursor LIMIT ?",
                (mailbox_id, after, limit),
            )
            for cursor, writer, seq, data in rows:
                total += len(data)
                if page and total > max_bytes:
                    break
                page.append(StoredEntry(cursor, writer, seq, data))
            rows.close()
        return page, more_after(page, latest)

    async def latest_cursor(self, mailbox_id: bytes) -> int:
        (latest,) = self._live_row(self._reader, "latest", mailbox_id)
        return int(latest)

    async def delete_mailbox(self, mailbox_id: bytes) -> bool:
        async with self._group() as conn:
            row = _one(conn, "SELECT expires_at FROM mailboxes WHERE id = ?", (mailbox_id,))
            if row is not None:
                self._erase(conn, mailbox_id)
        return row is not None and _live(row[0], self.clock())

    async def compact(self, mailbox_id: bytes, before: int) -> int:
        async with self._group() as conn:
            self._live_row(conn, "latest", mailbox_id)
            count, size = _one(
                conn,
                "SELECT COUNT(*), TOTAL(LENGTH(data)) FROM entries"
                " WHERE mailbox = ? AND cursor < ?",
                (mailbox_id, before),
            )
            if count:
                conn.execute(
                    "DELETE FROM entries WHERE mailbox = ? AND cursor < ?", (mailbox_id, before)
                )
                conn.execute(
                    "UPDATE mailboxes SET entries = entries - ?, bytes = bytes - ? WHERE id = ?",
                    (count, int(size), mailbox_id),
                )
        return int(count)

    async def sweep_expired(self, now: float | None = None) -> int:
        now = self.clock() if now is None else now
        swept = 0
        while True:
            async with self._group() as conn:
                expired = conn.execute(
                    "SELECT id FROM mailboxes WHERE expires_at <= ? LIMIT ?", (now, SWEEP_BATCH)
                ).fetchall()
                for (mailbox_id,) in expired:
                    self._erase(conn, mailbox_id)
            swept += len(expired)
            if len(expired) < SWEEP_BATCH:
                return swept

    async def stats(self) -> Stats:
        mailboxes, entries, size = _one(
            self._reader,
            f"SELECT COUNT(*), TOTAL(entries), TOTAL(bytes) FROM mailboxes WHERE {_LIVE}",
            (self.clock(),),
        )
        return Stats(int(mailboxes), int(entries), int(size))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._start_commit()  # a group still open commits now
        while self._committing is not None:
            await asyncio.wait([self._committing])
        self._committer.shutdown()
        self.hub.close()
        self._reader.close()
        self._conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _live_row(
        self, conn: sqlite3.Connection, columns: str, mailbox_id: bytes
    ) -> tuple[Any, ...]:
        row = _one(
            conn,
            f"SELECT {columns} FROM mailboxes WHERE id = ? AND {_LIVE}",
            (mailbox_id, self.clock()),
        )
        if row is None:
            raise UnknownMailbox("no such mailbox")
        return tuple(row)


def _connect(uri: str) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit, never opened behind our back.
    # check_same_thread=False: COMMIT runs on the committer thread, never concurrently.
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    # Only reached when another process holds the write lock (a checkpointing reader).
    conn.execute("PRAGMA busy_timeout = 2000")
    return conn


def _commit(conn: sqlite3.Connection) -> None:
    """On the committer thread: make the group durable, or undo all of it."""
    try:
        conn.execute("COMMIT")
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def _one(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...] = ()) -> Any:
    """The first row, with the statement closed at once: an open statement would pin the
    reader connection to an old snapshot, hiding later commits."""
    cursor = conn.execute(sql, args)
    try:
        return cursor.fetchone()
    finally:
        cursor.close()


def _live(expires_at: float | None, now: float) -> bool:
    return expires_at is None or expires_at > now
