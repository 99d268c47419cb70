"""PostgreSQL group commit: concurrent appends share statements and commits, not fates."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import asyncpg
import pytest

from carnet.protocol.envelope import Entry
from carnet.relay.pg_cluster import PostgresCluster
from carnet.relay.storage.base import (
    EntryConflict,
    Quota,
    QuotaExceeded,
    SeqGap,
    StorageUnavailable,
    UnknownMailbox,
)
from carnet.relay.storage.postgres import PostgresStorage
from tests.relay.helpers import FakeClock, raw_entry
from tests.support.postgres import pg_cluster, pg_dsn, start_cluster

__all__ = ["pg_cluster", "pg_dsn"]
W1, W2 = b"\x01" * 16, b"\x02" * 16


async def new_mailbox(storage: PostgresStorage, ttl: int | None = None) -> bytes:
    mailbox_id = os.urandom(32)
    await storage.create_mailbox(mailbox_id, b"w" * 32, b"r" * 32, ttl)
    return mailbox_id


async def contents(storage: PostgresStorage, mailbox_id: bytes) -> list[tuple[int, bytes, int]]:
    rows, more = await storage.read(mailbox_id, 0, 1000, 10**8)
    assert not more
    return [(r.cursor, r.writer, r.seq) for r in rows]


async def test_one_batch_judges_each_request_alone(pg_dsn: str) -> None:
    """Good appends, retries, gaps, conflicts, overflows, unknown and expired mailboxes,
    and several requests to one mailbox, all at once: each gets what it would alone."""
    clock = FakeClock()
    storage = await PostgresStorage.open(pg_dsn, clock)
    try:
        storage.quota = Quota(max_entries=3)
        good = [await new_mailbox(storage) for _ in range(30)]
        retried, gapped, conflicted, full, shared, chained = [
            await new_mailbox(storage) for _ in range(6)
        ]
        expiring = await new_mailbox(storage, ttl=10)
        stored = raw_entry(W1, 1)
        for mailbox_id in (retried, gapped, conflicted):
            await storage.append(mailbox_id, [stored])
        await storage.append(full, [raw_entry(W1, 1), raw_entry(W1, 2), raw_entry(W1, 3)])
        clock.advance(10)
        batches = storage._batcher.batches

        calls: dict[str, tuple[bytes, list[Entry]]] = {
            **{f"good{i}": (m, [raw_entry(W1, 1), raw_entry(W2, 1)]) for i, m in enumerate(good)},
            "retry": (retried, [stored, raw_entry(W1, 2)]),
            "gap": (gapped, [raw_entry(W1, 3)]),
            "conflict": (conflicted, [raw_entry(W1, 1)]),
            "full": (full, [raw_entry(W2, 1)]),
            "unknown": (os.urandom(32), [raw_entry(W1, 1)]),
            "expired": (expiring, [raw_entry(W1, 1)]),
            "shared1": (shared, [raw_entry(W1, 1)]),
            "shared2": (shared, [raw_entry(W2, 1)]),
            "chained1": (chained, [raw_entry(W1, 1)]),
            "chained2": (chained, [raw_entry(W1, 2)]),  # sent after its seq 1: must follow it
        }
        answers = await asyncio.gather(
            *(storage.append(m, entries) for m, entries in calls.values()), return_exceptions=True
        )
        result = dict(zip(calls, answers, strict=True))
        for i in range(30):
            assert result[f"good{i}"] == (2, 2)
        assert result["retry"] == (2, 1)
        assert isinstance(result["gap"], SeqGap)
        assert isinstance(result["conflict"], EntryConflict)
        assert isinstance(result["full"], QuotaExceeded)
        assert isinstance(result["unknown"], UnknownMailbox)
        assert isinstance(result["expired"], UnknownMailbox)
        assert sorted([result["shared1"], result["shared2"]]) == [(1, 1), (2, 1)]
        assert (result["chained1"], result["chained2"]) == ((1, 1), (2, 1))
        # 43 requests went to the database in a handful of statements, not one each.
        assert storage._batcher.batches - batches <= 10

        for mailbox_id in good:
            assert await contents(storage, mailbox_id) == [(1, W1, 1), (2, W2, 1)]
        assert await contents(storage, retried) == [(1, W1, 1), (2, W1, 2)]
        for mailbox_id in (gapped, conflicted):
            assert await contents(storage, mailbox_id) == [(1, W1, 1)]
        assert await storage.latest_cursor(full) == 3
        assert sorted(w for _, w, _ in await contents(storage, shared)) == [W1, W2]
        assert await contents(storage, chained) == [(1, W1, 1), (2, W1, 2)]
    finally:
        await storage.close()


async def test_two_stores_batching_into_the_same_mailboxes_never_deadlock(pg_dsn: str) -> None:
    """Two relay processes' batches lock many mailbox rows each: always in one order."""
    first, second = await PostgresStorage.open(pg_dsn), await PostgresStorage.open(pg_dsn)
    try:
        mailboxes = [await new_mailbox(first) for _ in range(40)]
        rounds = 60

        async def feed(storage: PostgresStorage, writer: bytes, order: list[bytes]) -> None:
            for seq in range(1, rounds + 1):
                await asyncio.gather(*(storage.append(m, [raw_entry(writer, seq)]) for m in order))

        await asyncio.gather(
            feed(first, W1, mailboxes), feed(second, W2, mailboxes[::-1])
        )  # a deadlock would surface as StorageUnavailable here
        for mailbox_id in mailboxes:
            rows = await contents(first, mailbox_id)
            assert [cursor for cursor, _, _ in rows] == list(range(1, 2 * rounds + 1))
            for writer in (W1, W2):
                assert [s for _, w, s in rows if w == writer] == list(range(1, rounds + 1))
        assert first._batcher.batches < rounds * len(mailboxes) / 4
    finally:
        await first.close()
        await second.close()


async def test_batches_commit_durably(pg_dsn: str) -> None:
    """Grouping requests into one commit must not turn durability off, nor may a
    database whose default is off."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        name = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit TO off')
    finally:
        await conn.close()
    storage = await PostgresStorage.open(pg_dsn)
    try:
        async with storage._pool.acquire() as conn:
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await storage.close()


@pytest.fixture(scope="module")
def crashing_cluster() -> Iterator[PostgresCluster]:
    """A server of its own, crashed by the test."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.remove()


async def test_every_acknowledged_append_survives_a_database_crash(
    crashing_cluster: PostgresCluster,
) -> None:
    """Appends are answered only after the commit that holds them: a crash (immediate
    stop) in the middle of a stream of batches loses none that was acknowledged, and
    the refused ones can be retried as they were (idempotent)."""
    dsn = crashing_cluster.create_database(f"c_{os.urandom(4).hex()}")
    storage = await PostgresStorage.open(dsn)
    try:
        mailboxes = [await new_mailbox(storage) for _ in range(32)]
        acknowledged: dict[bytes, list[tuple[int, Entry]]] = {m: [] for m in mailboxes}
        refused: dict[bytes, Entry] = {}
        crashed = asyncio.Event()

        async def writer(mailbox_id: bytes) -> None:
            seq = 0
            while not crashed.is_set() or seq < 3:
                entry = raw_entry(W1, seq + 1)
                try:
                    latest, _ = await storage.append(mailbox_id, [entry])
                except StorageUnavailable:
                    refused[mailbox_id] = entry
                    return
                acknowledged[mailbox_id].append((latest, entry))
                seq += 1

        async def crash() -> None:
            while sum(map(len, acknowledged.values())) < 500:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(crashing_cluster.down, "immediate")
            crashed.set()

        await asyncio.gather(crash(), *(writer(m) for m in mailboxes))
        assert refused, "the crash came after every writer had stopped"
    finally:
        await storage.close()
    await asyncio.to_thread(crashing_cluster.up)
    storage = await PostgresStorage.open(dsn, wait=10)
    try:
        for mailbox_id in mailboxes:
            rows, _ = await storage.read(mailbox_id, 0, 1000, 10**8)
            stored = {r.cursor: r.data for r in rows}
            for latest, entry in acknowledged[mailbox_id]:
                assert stored[latest] == entry.data
            if mailbox_id in refused:  # stored or not, its retry now succeeds
                entry = refused[mailbox_id]
                latest, _ = await storage.append(mailbox_id, [entry])
                assert latest == len(acknowledged[mailbox_id]) + 1
    finally:
        await storage.close()


async def test_a_failing_batch_statement_leaves_each_request_to_the_locked_path(
    pg_dsn: str,
) -> None:
    """If the batch statement itself fails (it wrote nothing), requests are judged alone."""
    storage = await PostgresStorage.open(pg_dsn)
    try:
        mailbox_id = await new_mailbox(storage)
        conn = await asyncpg.connect(pg_dsn)
        try:
            # A trigger refusing multi-row statements makes only the batch path fail.
            await conn.execute(
                """
                CREATE FUNCTION refuse_batches() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF current_query() LIKE '%WITH ORDINALITY%' THEN
                        RAISE EXCEPTION 'no batches today';
                    END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER refuse_batches BEFORE INSERT ON entries
                    FOR EACH ROW EXECUTE FUNCTION refuse_batches();
                """
            )
        finally:
            await conn.close()
        assert await storage.append(mailbox_id, [raw_entry(W1, 1)]) == (1, 1)
        with pytest.raises(SeqGap):
            await storage.append(mailbox_id, [raw_entry(W1, 3)])
        assert await contents(storage, mailbox_id) == [(1, W1, 1)]
    finally:
        await storage.close()
