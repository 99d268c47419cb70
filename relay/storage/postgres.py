"""The shared backend: PostgreSQL through asyncpg, for one or several relay processes.

Each request is one short transaction on a pooled connection, but appends,
the bulk of the load, are grouped (``postgres_batch``): the requests that arrive
while earlier batches are in flight go together, in one statement and one
commit (``_APPEND_BATCH``), each answered only once that commit is durable
(``synchronous_commit`` stays on). An append locks its mailbox row (``SELECT …
FOR UPDATE``; a batch locks its rows in id order, so batches of several relay
processes never deadlock), so cursors are allocated by one transaction at a
time per mailbox, whichever relay process it comes from. The batch statement
takes the common append (every entry its writer's next, within the quota);
anything else (a retry, a gap, a conflict, an overflow, no such mailbox, a race
with another append) writes nothing there and takes the general path alone, a
transaction where ``appending.plan_append`` decides. Grouping is what lets a
small machine keep up: the cost of an append is the relay's and PostgreSQL's
CPU per statement and per commit, not the disk's flush. Subscribers hear of
appends through LISTEN/NOTIFY (``postgres_listen``), sent right after the
commit, never before.

Erasure locks the mailbox row in one statement and deletes in the next: in
READ COMMITTED each statement sees what committed before it started, so an
append that held the lock until just before is erased with the rest.

Every failure to reach the database (down, restarting, out of connections)
becomes StorageUnavailable, which the server answers with a 503; nothing is
kept in the process that a restart of it or of the database would lose.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence

import asyncpg

from carnet.protocol.envelope import Entry
from carnet.relay.storage import postgres_schema
from carnet.relay.storage.appending import Key, Totals, check_duplicates, plan_append
from carnet.relay.storage.base import (
    Clock,
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
from carnet.relay.storage.postgres_batch import AppendBatcher, Request
from carnet.relay.storage.postgres_listen import CHANNEL, Announcer, Listener

SWEEP_BATCH = 64
DEFAULT_POOL = 10
ACQUIRE_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 30.0
# Failures that say "the database cannot serve now", not "this request is wrong":
# connection lost or refused, shutting down or starting, out of disk or connections.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.TransactionRollbackError,
)
_UNAVAILABLE_MESSAGE = "the database is unavailable; try again later"

_LIVE = "(expires_at IS NULL OR expires_at > $2)"
# Erases mailboxes (already locked by the caller) with their entries and heads,
# and tells every relay process. Used for one mailbox as for a sweep's batch.
_ERASE = f"""
    WITH gone_entries AS (DELETE FROM entries WHERE mailbox = ANY($1::bytea[])),
         gone_heads AS (DELETE FROM heads WHERE mailbox = ANY($1::bytea[]))
    DELETE FROM mailboxes WHERE id = ANY($1::bytea[])
    RETURNING pg_notify('{CHANNEL}', encode(id, 'hex') || ' gone')
"""
_LOCK = "SELECT expires_at FROM mailboxes WHERE id = $1 FOR UPDATE"
# The heads are read by a statement of their own, after the lock: one statement
# reading them with the lock would see them as of before it waited for the lock,
# and miss what the append that held it had just written.
_APPEND_LOCK = "SELECT latest, entries, bytes, expires_at FROM mailboxes WHERE id = $1 FOR UPDATE"
_HEADS = "SELECT writer, seq FROM heads WHERE mailbox = $1 AND writer = ANY($2::bytea[])"
_APPEND = """
    WITH new_entries AS (
        INSERT INTO entries (mailbox, cursor, writer, seq, data)
        SELECT $1, * FROM unnest($2::bigint[], $3::bytea[], $4::bigint[], $5::bytea[])
    ), new_heads AS (
        INSERT INTO heads (mailbox, writer, seq)
        SELECT $1, * FROM unnest($6::bytea[], $7::bigint[])
        ON CONFLICT (mailbox, writer) DO UPDATE SET seq = excluded.seq
    )
    UPDATE mailboxes SET latest = $8, entries = $9, bytes = $10 WHERE id = $1
"""
# The common appends of a batch of requests (one per mailbox), in one statement,
# one round trip and one commit (no BEGIN/COMMIT): each entry is its writer's
# next seq, in order, and the quota holds. It locks the batch's mailbox rows in
# id order (so two batches, from this process or another, never deadlock), and
# appends to a mailbox only if its row is unchanged since the statement's
# snapshot (same `latest`: no append committed in between, so the heads it read
# are current); else, or for anything else (a retry, a gap, a conflict, an
# overflow, no such mailbox), it writes nothing to that mailbox and returns no
# row for it, and that request takes the locked path, where ``plan_append``
# judges. Per mailbox, all of a request is written or none: every write is gated
# by the mailbox's one `ok` row. $1: the mailboxes; $3..$6: the entries, each
# with its mailbox, in request order.
_APPEND_BATCH = """
    WITH m AS MATERIALIZED (
        SELECT id, latest, entries, bytes, expires_at FROM mailboxes
        WHERE id = ANY($1::bytea[]) ORDER BY id FOR UPDATE
    ), seen AS MATERIALIZED (
        SELECT id, latest FROM mailboxes WHERE id = ANY($1::bytea[])
    ), batch AS MATERIALIZED (
        SELECT b.mailbox, b.writer, b.seq, b.data,
               row_number() OVER (PARTITION BY b.mailbox ORDER BY b.i) AS n,
               coalesce(h.seq, 0)
                   + row_number() OVER (PARTITION BY b.mailbox, b.writer ORDER BY b.i)
                   AS expected
        FROM unnest($3::bytea[], $4::bytea[], $5::bigint[], $6::bytea[])
             WITH ORDINALITY AS b(mailbox, writer, seq, data, i)
        LEFT JOIN heads h ON h.mailbox = b.mailbox AND h.writer = b.writer
    ), ok AS MATERIALIZED (
        SELECT m.id, m.latest AS base, count(*) AS n, sum(octet_length(batch.data)) AS size
        FROM m JOIN seen ON seen.id = m.id JOIN batch ON batch.mailbox = m.id
        WHERE (m.expires_at IS NULL OR m.expires_at > $2) AND m.latest = seen.latest
        GROUP BY m.id, m.latest, m.entries, m.bytes
        HAVING bool_and(batch.seq = batch.expected)
           AND ($7::bigint = 0 OR m.entries + count(*) <= $7::bigint)
           AND ($8::bigint = 0 OR m.bytes + sum(octet_length(batch.data)) <= $8::bigint)
    ), new_entries AS (
        INSERT INTO entries (mailbox, cursor, writer, seq, data)
        SELECT ok.id, ok.base + batch.n, batch.writer, batch.seq, batch.data
        FROM ok JOIN batch ON batch.mailbox = ok.id
    ), new_heads AS (
        INSERT INTO heads (mailbox, writer, seq)
        SELECT ok.id, batch.writer, max(batch.seq)
        FROM ok JOIN batch ON batch.mailbox = ok.id GROUP BY ok.id, batch.writer
        ON CONFLICT (mailbox, writer) DO UPDATE SET seq = excluded.seq
    )
    UPDATE mailboxes
    SET latest = mailboxes.latest + ok.n, entries = mailboxes.entries + ok.n,
        bytes = mailboxes.bytes + ok.size
    FROM ok WHERE mailboxes.id = ok.id
    RETURNING mailboxes.id, mailboxes.latest
"""
_STORED = """
    SELECT writer, seq, data FROM entries
    WHERE mailbox = $1 AND (writer, seq) IN (SELECT * FROM unnest($2::bytea[], $3::bigint[]))
"""
# One statement, so the latest cursor and the page come from one snapshot. The
# window keeps a prefix of at most $4 bytes of data, and at least one entry.
_READ = f"""
    SELECT m.latest, p.cursor, p.writer, p.seq, p.data
    FROM mailboxes m LEFT JOIN LATERAL (
        SELECT * FROM (
            SELECT cursor, writer, seq, data,
                   sum(octet_length(data)) OVER (ORDER BY cursor) AS running,
                   row_number() OVER (ORDER BY cursor) AS n
            FROM (
                SELECT cursor, writer, seq, data FROM entries
                WHERE mailbox = m.id AND cursor > $3 ORDER BY cursor LIMIT $5
            ) page
        ) sized WHERE n = 1 OR running <= $4
    ) p ON true
    WHERE m.id = $1 AND {_LIVE}
    ORDER BY p.cursor
"""
_COMPACT = """
    WITH gone AS (
        DELETE FROM entries WHERE mailbox = $1 AND cursor < $2 RETURNING octet_length(data) AS size
    ), total AS (SELECT count(*) AS count, coalesce(sum(size), 0) AS size FROM gone)
    UPDATE mailboxes SET entries = entries - total.count, bytes = bytes - total.size
    FROM total WHERE id = $1 RETURNING total.count
"""


class PostgresStorage(Storage):
    def __init__(self, pool: asyncpg.Pool, clock: Clock = time.time) -> None:
        super().__init__(clock)
        self._pool = pool
        self._announcer = Announcer(pool)
        self._batcher = AppendBatcher(self._append_batch)
        self._listener: Listener | None = None
        self._closed = False

    @classmethod
    async def open(
        cls,
        dsn: str,
        clock: Clock = time.time,
        *,
        pool_size: int = DEFAULT_POOL,
        wait: float = 0.0,
        listen: bool = True,
        migrate: bool = True,
    ) -> PostgresStorage:
        """Connect (retrying for `wait` seconds), migrate, and LISTEN for other processes.

        With ``migrate=False`` (``carnet-relay stats``) the schema must already be current.
        """
        conn = await _connect_patiently(dsn, wait)
        try:
            if migrate:
                await postgres_schema.migrate(conn)
            else:
                version = await postgres_schema.current_version(conn)
                if version != postgres_schema.SCHEMA_VERSION:
                    raise StorageError(
                        f"the database has schema {version},"
                        f" this relay reads {postgres_schema.SCHEMA_VERSION}"
                    )
        except UNAVAILABLE:
            raise StorageError("lost the database while preparing its schema") from None
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=pool_size,
            timeout=CONNECT_TIMEOUT,
            command_timeout=COMMAND_TIMEOUT,
            # An append is answered once committed: that must mean durable, whatever
            # the database's own default says.
            server_settings={"application_name": "carnet-relay", "synchronous_commit": "on"},
            reset=_keep_session,
        )
        storage = cls(pool, clock)
        if listen:
            storage._listener = Listener(
                lambda: _connect(dsn), storage.hub.publish, storage._republish
            )
            storage._announcer.listener = storage._listener
            try:
                await storage._listener.start()
            except BaseException:
                await storage.close()
                raise
        return storage

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
                yield conn
        except UNAVAILABLE:
            raise StorageUnavailable(_UNAVAILABLE_MESSAGE) from None

    async def _fetchrow(self, sql: str, *args: object) -> asyncpg.Record | None:
        try:
            return await self._pool.fetchrow(sql, *args, timeout=COMMAND_TIMEOUT)
        except UNAVAILABLE:
            raise StorageUnavailable(_UNAVAILABLE_MESSAGE) from None

    async def _republish(self) -> None:
        """After missing notifications: publish every subscribed mailbox's state anew."""
        subscribed = self.hub.mailboxes()
        if not subscribed:
            return
        rows = await self._pool.fetch(
            f"SELECT id, latest FROM mailboxes WHERE id = ANY($1::bytea[]) AND {_LIVE}",
            subscribed,
            self.clock(),
        )
        latest = {bytes(row["id"]): int(row["latest"]) for row in rows}
        for mailbox_id in subscribed:
            self.hub.publish(mailbox_id, latest.get(mailbox_id))

    def _live(self, expires_at: float | None) -> bool:
        return expires_at is None or expires_at > self.clock()

    # -- Storage ----------------------------------------------------------------------

    async def create_mailbox(
        self, mailbox_id: bytes, write_key: bytes, read_key: bytes, ttl: int | None = None
    ) -> bool:
        expires_at = self.expires_at(ttl)
        async with self._transaction() as conn:
            while True:
                inserted = await conn.fetchval(
                    "INSERT INTO mailboxes (id, write_key, read_key, expires_at)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING RETURNING true",
                    mailbox_id,
                    write_key,
                    read_key,
                    expires_at,
                )
                if inserted:
                    return True
                row = await conn.fetchrow(
                    "SELECT write_key, read_key, expires_at FROM mailboxes WHERE id = $1"
                    " FOR UPDATE",
                    mailbox_id,
                )
                if row is None:
                    continue  # erased between the two statements: try the insert again
                if self._live(row["expires_at"]):
                    if (bytes(row["write_key"]), bytes(row["read_key"])) != (write_key, read_key):
                        raise MailboxConflict("the mailbox exists with other keys")
                    return False
                await conn.execute(_ERASE, [mailbox_id])  # expired, not yet swept: afresh

    async def get_mailbox(self, mailbox_id: bytes) -> Mailbox | None:
        row = await self._fetchrow(
            "SELECT write_key, read_key, expires_at FROM mailboxes WHERE id = $1", mailbox_id
        )
        if row is None or not self._live(row["expires_at"]):
            return None
        return Mailbox(mailbox_id, bytes(row["write_key"]), bytes(row["read_key"]), row[2])

    async def append(self, mailbox_id: bytes, entries: Sequence[Entry]) -> tuple[int, int]:
        if entries:
            latest = await self._batcher.append(mailbox_id, entries)
            if latest is not None:
                return latest, len(entries)
        return await self._append_locked(mailbox_id, entries)

    async def _append_batch(self, batch: list[Request]) -> dict[bytes, int]:
        """The common appends of `batch` (one request per mailbox), in one statement."""
        mailboxes = [request.mailbox_id for request in batch]
        owners = [r.mailbox_id for r in batch for _ in r.entries]
        entries = [entry for request in batch for entry in request.entries]
        try:
            rows = await self._pool.fetch(
                _APPEND_BATCH,
                mailboxes,
                self.clock(),
                owners,
                [e.writer for e in entries],
                [e.seq for e in entries],
                [e.data for e in entries],
                self.quota.max_entries or 0,
                self.quota.max_bytes or 0,
                timeout=COMMAND_TIMEOUT,
            )
        except UNAVAILABLE:
            raise StorageUnavailable(_UNAVAILABLE_MESSAGE) from None
        except asyncpg.PostgresError:
            # Not expected (the statement checks what could fail), but the statement
            # wrote nothing: let each request be judged alone on the locked path.
            return {}
        latest = {bytes(row["id"]): int(row["latest"]) for row in rows}
        for mailbox_id, cursor in latest.items():
            self._announcer.announce(mailbox_id.hex(), cursor)
        return latest

    async def _append_locked(self, mailbox_id: bytes, entries: Sequence[Entry]) -> tuple[int, int]:
        """The general append: lock, read, ``plan_append``, write, in one transaction."""
        writers = list({entry.writer: None for entry in entries})
        async with self._transaction() as conn:
            row = await conn.fetchrow(_APPEND_LOCK, mailbox_id)
            if row is None or not self._live(row["expires_at"]):
                raise UnknownMailbox("no such mailbox")
            before = Totals(row["latest"], row["entries"], row["bytes"])
            heads = {
                bytes(r["writer"]): r["seq"] for r in await conn.fetch(_HEADS, mailbox_id, writers)
            }
            plan = plan_append(entries, before, heads, self.quota)
            if plan.duplicates:
                check_duplicates(plan.duplicates, await _stored(conn, mailbox_id, plan.duplicates))
            if plan.rows:
                totals = plan.totals
                await conn.execute(
                    _APPEND,
                    mailbox_id,
                    [r.cursor for r in plan.rows],
                    [r.writer for r in plan.rows],
                    [r.seq for r in plan.rows],
                    [r.data for r in plan.rows],
                    list(plan.heads),
                    list(plan.heads.values()),
                    totals.latest,
                    totals.entries,
                    totals.bytes,
                )
        if plan.rows:
            self._announcer.announce(mailbox_id.hex(), plan.totals.latest)
        return plan.totals.latest, plan.appended

    async def read(
        self, mailbox_id: bytes, after: int, limit: int, max_bytes: int
    ) -> tuple[list[StoredEntry], bool]:
        try:
            rows = await self._pool.fetch(
                _READ, mailbox_id, self.clock(), after, max_bytes, limit, timeout=COMMAND_TIMEOUT
            )
        except UNAVAILABLE:
            raise StorageUnavailable(_UNAVAILABLE_MESSAGE) from None
        if not rows:
            raise UnknownMailbox("no such mailbox")
        page = [
            StoredEntry(row["cursor"], bytes(row["writer"]), row["seq"], bytes(row["data"]))
            for row in rows
            if row["cursor"] is not None
        ]
        return page, more_after(page, rows[0]["latest"])

    async def latest_cursor(self, mailbox_id: bytes) -> int:
        row = await self._fetchrow(
            "SELECT latest, expires_at FROM mailboxes WHERE id = $1", mailbox_id
        )
        if row is None or not self._live(row["expires_at"]):
            raise UnknownMailbox("no such mailbox")
        return int(row["latest"])

    async def delete_mailbox(self, mailbox_id: bytes) -> bool:
        async with self._transaction() as conn:
            row = await conn.fetchrow(_LOCK, mailbox_id)
            if row is not None:
                await conn.execute(_ERASE, [mailbox_id])
        return row is not None and self._live(row["expires_at"])

    async def compact(self, mailbox_id: bytes, before: int) -> int:
        async with self._transaction() as conn:
            row = await conn.fetchrow(_LOCK, mailbox_id)
            if row is None or not self._live(row["expires_at"]):
                raise UnknownMailbox("no such mailbox")
            return int(await conn.fetchval(_COMPACT, mailbox_id, before))

    async def sweep_expired(self, now: float | None = None) -> int:
        now = self.clock() if now is None else now
        swept = 0
        while True:
            async with self._transaction() as conn:
                # SKIP LOCKED: relay processes sweeping at once share the work, never wait.
                expired = await conn.fetch(
                    "SELECT id FROM mailboxes WHERE expires_at <= $1"
                    " LIMIT $2 FOR UPDATE SKIP LOCKED",
                    now,
                    SWEEP_BATCH,
                )
                if expired:
                    await conn.execute(_ERASE, [row["id"] for row in expired])
            swept += len(expired)
            if len(expired) < SWEEP_BATCH:
                return swept

    async def stats(self) -> Stats:
        row = await self._fetchrow(
            "SELECT count(*), coalesce(sum(entries), 0), coalesce(sum(bytes), 0)"
            " FROM mailboxes WHERE expires_at IS NULL OR expires_at > $1",
            self.clock(),
        )
        assert row is not None
        return Stats(int(row[0]), int(row[1]), int(row[2]))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._batcher.close()
        await self._announcer.close()
        if self._listener is not None:
            await self._listener.close()
        try:
            await asyncio.wait_for(self._pool.close(), 10)
        except (TimeoutError, *UNAVAILABLE):
            self._pool.terminate()
        self.hub.close()


async def _stored(
    conn: asyncpg.Connection, mailbox_id: bytes, duplicates: Sequence[Entry]
) -> dict[Key, bytes]:
    rows = await conn.fetch(
        _STORED, mailbox_id, [e.writer for e in duplicates], [e.seq for e in duplicates]
    )
    return {(bytes(r["writer"]), r["seq"]): bytes(r["data"]) for r in rows}


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset: nothing. Pooled connections never LISTEN, SET or lock beyond a
    transaction, so asyncpg's default reset (RESET ALL, UNLISTEN *, …: one more round
    trip per request) would have nothing to undo; a stray transaction is still rolled
    back by asyncpg itself before this runs."""


async def _connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        dsn, timeout=CONNECT_TIMEOUT, server_settings={"application_name": "carnet-relay"}
    )


async def _connect_patiently(dsn: str, wait: float) -> asyncpg.Connection:
    """Connect, retrying for `wait` seconds (a relay booting before its database)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return await _connect(dsn)
        except (asyncpg.ClientConfigurationError, ValueError) as exc:
            raise StorageError(f"bad database URL ({type(exc).__name__})") from None
        except UNAVAILABLE as exc:
            if time.monotonic() >= deadline:
                # The exception's text may name the host; never the DSN, which may hold a password.
                raise StorageError(f"cannot reach the database ({type(exc).__name__})") from None
            await asyncio.sleep(0.5)
        except asyncpg.PostgresError as exc:
            # Refused for good: a wrong password, an unknown database or role.
            reason = " ".join(str(exc).split())
            raise StorageError(f"the database refused the connection: {reason}") from None
