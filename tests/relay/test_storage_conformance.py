"""The storage contract (relay/storage/base.py), run unchanged on every backend."""

from __future__ import annotations

import asyncio
import os

import pytest

from carnet.relay.storage.base import (
    EntryConflict,
    MailboxConflict,
    Quota,
    QuotaExceeded,
    SeqGap,
    Stats,
    Storage,
    UnknownMailbox,
)
from tests.relay.conftest import Opener
from tests.relay.helpers import FakeClock, raw_entry

W1, W2 = b"\x01" * 16, b"\x02" * 16


async def new_mailbox(storage: Storage, ttl: int | None = None) -> bytes:
    mailbox_id = os.urandom(32)
    assert await storage.create_mailbox(mailbox_id, b"w" * 32, b"r" * 32, ttl)
    return mailbox_id


async def test_create_is_idempotent_and_refuses_other_keys(storage: Storage) -> None:
    mailbox_id = await new_mailbox(storage)
    assert not await storage.create_mailbox(mailbox_id, b"w" * 32, b"r" * 32)
    with pytest.raises(MailboxConflict):
        await storage.create_mailbox(mailbox_id, b"x" * 32, b"r" * 32)
    with pytest.raises(MailboxConflict):
        await storage.create_mailbox(mailbox_id, b"w" * 32, b"x" * 32)
    mailbox = await storage.get_mailbox(mailbox_id)
    assert mailbox is not None
    assert (mailbox.write_key, mailbox.read_key, mailbox.expires_at) == (b"w" * 32, b"r" * 32, None)
    assert await storage.get_mailbox(os.urandom(32)) is None


async def test_cursors_are_per_mailbox_and_gapless(storage: Storage) -> None:
    first, second = await new_mailbox(storage), await new_mailbox(storage)
    assert await storage.latest_cursor(first) == 0
    assert await storage.append(first, [raw_entry(W1, 1), raw_entry(W1, 2)]) == (2, 2)
    assert await storage.append(second, [raw_entry(W1, 1)]) == (1, 1)
    assert await storage.append(first, [raw_entry(W2, 1), raw_entry(W1, 3)]) == (4, 2)
    rows, more = await storage.read(first, 0, 100, 10**6)
    assert [(r.cursor, r.writer, r.seq) for r in rows] == [
        (1, W1, 1),
        (2, W1, 2),
        (3, W2, 1),
        (4, W1, 3),
    ]
    assert not more
    assert await storage.latest_cursor(second) == 1


async def test_append_is_idempotent_per_writer_and_seq(storage: Storage) -> None:
    mailbox_id = await new_mailbox(storage)
    batch = [raw_entry(W1, 1), raw_entry(W1, 2)]
    assert await storage.append(mailbox_id, batch) == (2, 2)
    assert await storage.append(mailbox_id, batch) == (2, 0)
    # A retried batch that overlaps what is stored appends only the new tail.
    assert await storage.append(mailbox_id, [*batch, raw_entry(W1, 3)]) == (3, 1)
    # The same entry twice in one batch is stored once.
    fourth = raw_entry(W1, 4)
    assert await storage.append(mailbox_id, [fourth, fourth]) == (4, 1)
    rows, _ = await storage.read(mailbox_id, 0, 100, 10**6)
    assert [r.data for r in rows[:2]] == [e.data for e in batch]


async def test_conflicts_and_gaps_store_nothing(storage: Storage) -> None:
    mailbox_id = await new_mailbox(storage)
    await storage.append(mailbox_id, [raw_entry(W1, 1)])
    with pytest.raises(EntryConflict):  # another entry at a stored (writer, seq)
        await storage.append(mailbox_id, [raw_entry(W2, 1), raw_entry(W1, 1)])
    with pytest.raises(SeqGap):  # seq 3 without 2
        await storage.append(mailbox_id, [raw_entry(W2, 1), raw_entry(W1, 3)])
    with pytest.raises(SeqGap):  # a writer's first seq is 1
        await storage.append(mailbox_id, [raw_entry(W2, 2)])
    with pytest.raises(EntryConflict):  # a conflict within the batch itself
        await storage.append(mailbox_id, [raw_entry(W2, 1), raw_entry(W2, 1)])
    assert await storage.latest_cursor(mailbox_id) == 1
    assert await storage.append(mailbox_id, [raw_entry(W2, 1)]) == (2, 1)  # W2 was never stored
    assert await storage.stats() == Stats(mailboxes=1, entries=2, bytes=200)


async def test_reads_see_every_acknowledged_write(storage: Storage) -> None:
    mailbox_id = await new_mailbox(storage)
    for n in range(1, 4):
        assert await storage.get_mailbox(mailbox_id) is not None
        await storage.append(mailbox_id, [raw_entry(W1, n)])
        assert await storage.latest_cursor(mailbox_id) == n
        rows, more = await storage.read(mailbox_id, n - 1, 10, 10**6)
        assert [r.cursor for r in rows] == [n] and not more
        assert (await storage.stats()).entries == n


async def test_unknown_mailbox(storage: Storage) -> None:
    nowhere = os.urandom(32)
    with pytest.raises(UnknownMailbox):
        await storage.append(nowhere, [raw_entry(W1, 1)])
    with pytest.raises(UnknownMailbox):
        await storage.read(nowhere, 0, 10, 10**6)
    with pytest.raises(UnknownMailbox):
        await storage.latest_cursor(nowhere)
    assert not await storage.delete_mailbox(nowhere)


async def test_pages_by_count_and_bytes(storage: Storage) -> None:
    mailbox_id = await new_mailbox(storage)
    await storage.append(mailbox_id, [raw_entry(W1, seq, size=1000) for seq in range(1, 11)])
    rows, more = await storage.read(mailbox_id, 0, 4, 10**6)
    assert [r.cursor for r in rows] == [1, 2, 3, 4] and more
    rows, more = await storage.read(mailbox_id, 4, 100, 2500)
    assert [r.cursor for r in rows] == [5, 6] and more
    rows, more = await storage.read(mailbox_id, 8, 100, 10)  # one entry even when over budget
    assert [r.cursor for r in rows] == [9] and more
    rows, more = await storage.read(mailbox_id, 9, 100, 10**6)
    assert [r.cursor for r in rows] == [10] and not more
    assert await storage.read(mailbox_id, 10, 100, 10**6) == ([], False)
    assert await storage.read(mailbox_id, 99, 100, 10**6) == ([], False)


async def test_delete_erases_and_the_id_can_start_afresh(storage: Storage) -> None:
    mailbox_id = await new_mailbox(storage)
    kept = await new_mailbox(storage)
    await storage.append(mailbox_id, [raw_entry(W1, 1), raw_entry(W1, 2)])
    await storage.append(kept, [raw_entry(W1, 1)])
    assert await storage.delete_mailbox(mailbox_id)
    assert await storage.get_mailbox(mailbox_id) is None
    assert not await storage.delete_mailbox(mailbox_id)
    assert await storage.stats() == Stats(mailboxes=1, entries=1, bytes=100)
    assert await storage.create_mailbox(mailbox_id, b"a" * 32, b"b" * 32)
    assert await storage.append(mailbox_id, [raw_entry(W1, 1)]) == (1, 1)


async def test_expiry_hides_at_once_and_the_sweep_erases(
    storage: Storage, clock: FakeClock
) -> None:
    short = await new_mailbox(storage, ttl=10)
    forever = await new_mailbox(storage)
    await storage.append(short, [raw_entry(W1, 1)])
    mailbox = await storage.get_mailbox(short)
    assert mailbox is not None and mailbox.expires_at == clock.now + 10
    clock.advance(10)
    assert await storage.get_mailbox(short) is None
    with pytest.raises(UnknownMailbox):
        await storage.append(short, [raw_entry(W1, 2)])
    with pytest.raises(UnknownMailbox):
        await storage.read(short, 0, 10, 10**6)
    assert await storage.stats() == Stats(mailboxes=1, entries=0, bytes=0)
    assert await storage.sweep_expired() == 1
    assert await storage.sweep_expired() == 0
    assert await storage.get_mailbox(forever) is not None
    # An expired id may be created again, empty, by anyone.
    assert await storage.create_mailbox(short, b"n" * 32, b"m" * 32, 5)
    assert await storage.latest_cursor(short) == 0


async def test_recreating_an_expired_unswept_mailbox_starts_empty(
    storage: Storage, clock: FakeClock
) -> None:
    mailbox_id = await new_mailbox(storage, ttl=1)
    await storage.append(mailbox_id, [raw_entry(W1, 1)])
    clock.advance(2)
    assert await storage.create_mailbox(mailbox_id, b"w" * 32, b"r" * 32)
    assert await storage.read(mailbox_id, 0, 10, 10**6) == ([], False)
    assert await storage.append(mailbox_id, [raw_entry(W1, 1)]) == (1, 1)


async def test_sweep_handles_many_mailboxes(storage: Storage, clock: FakeClock) -> None:
    for _ in range(150):  # more than one sweep batch
        await storage.append(await new_mailbox(storage, ttl=5), [raw_entry(W1, 1)])
    clock.advance(6)
    assert await storage.sweep_expired() == 150
    assert await storage.stats() == Stats(0, 0, 0)


async def heard_until(heard: list[int | None], last: int | None) -> list[int | None]:
    """What a subscriber heard once it heard `last`: delivery may lag the commit (on
    PostgreSQL it travels through the database), never precede it."""
    async with asyncio.timeout(5):
        while not heard or heard[-1] != last:
            await asyncio.sleep(0.005)
    return heard


async def test_subscribers_hear_commits_and_erasure(storage: Storage) -> None:
    mailbox_id, other = await new_mailbox(storage), await new_mailbox(storage)
    heard: list[int | None] = []
    unsubscribe = storage.subscribe(mailbox_id, heard.append)
    second = raw_entry(W1, 2)
    await storage.append(mailbox_id, [raw_entry(W1, 1), second])
    await storage.append(other, [raw_entry(W1, 1)])
    await storage.append(mailbox_id, [second])  # a duplicate grows nothing
    await storage.append(mailbox_id, [raw_entry(W2, 1)])
    # Cursors only grow; a backend may coalesce a burst into its latest cursor.
    assert (await heard_until(heard, 3)) in ([2, 3], [3])
    cursors = list(heard)
    await storage.delete_mailbox(mailbox_id)
    assert await heard_until(heard, None) == [*cursors, None]
    unsubscribe()
    await storage.create_mailbox(mailbox_id, b"w" * 32, b"r" * 32)
    await storage.append(mailbox_id, [raw_entry(W1, 1)])
    await asyncio.sleep(0.1)
    assert heard == [*cursors, None]


async def test_concurrent_appends_share_commits_but_not_fates(storage: Storage) -> None:
    mailbox_id = await new_mailbox(storage)
    writers = [os.urandom(16) for _ in range(50)]

    async def write(writer: bytes, seq: int) -> tuple[int, int] | str:
        try:
            return await storage.append(mailbox_id, [raw_entry(writer, seq)])
        except SeqGap:
            return "gap"

    # Every second writer starts at seq 2: refused, without affecting its neighbours.
    results = await asyncio.gather(*(write(w, 1 + i % 2) for i, w in enumerate(writers)))
    assert results.count("gap") == 25
    cursors = sorted(r[0] for r in results if isinstance(r, tuple))
    assert cursors == list(range(1, 26))
    rows, more = await storage.read(mailbox_id, 0, 100, 10**6)
    assert [r.cursor for r in rows] == cursors and not more


async def test_acknowledged_writes_survive_a_reopen(open_storage: Opener) -> None:
    storage = await open_storage()
    mailbox_id = await new_mailbox(storage)
    await storage.append(mailbox_id, [raw_entry(W1, 1), raw_entry(W2, 1)])
    await storage.close()
    await storage.close()  # idempotent
    reopened = await open_storage()
    assert await reopened.latest_cursor(mailbox_id) == 2
    assert await reopened.append(mailbox_id, [raw_entry(W1, 2)]) == (3, 1)
    assert await reopened.stats() == Stats(mailboxes=1, entries=3, bytes=300)


async def test_compaction_drops_old_entries_but_keeps_cursors_and_heads(storage: Storage) -> None:
    mailbox_id = await new_mailbox(storage)
    first = raw_entry(W1, 1)
    await storage.append(mailbox_id, [first, raw_entry(W1, 2), raw_entry(W2, 1)])
    await storage.append(mailbox_id, [raw_entry(W1, 3), raw_entry(W2, 2)])
    assert await storage.compact(mailbox_id, 4) == 3
    assert await storage.compact(mailbox_id, 4) == 0
    rows, more = await storage.read(mailbox_id, 0, 1, 10**6)
    assert [r.cursor for r in rows] == [4] and more
    assert await storage.latest_cursor(mailbox_id) == 5
    assert await storage.stats() == Stats(mailboxes=1, entries=2, bytes=200)
    # A retry of a compacted entry is still a retry, and each writer goes on from its head.
    assert await storage.append(mailbox_id, [first, raw_entry(W1, 4)]) == (6, 1)
    with pytest.raises(SeqGap):
        await storage.append(mailbox_id, [raw_entry(W2, 4)])
    assert await storage.compact(mailbox_id, 100) == 3
    assert await storage.read(mailbox_id, 0, 10, 10**6) == ([], False)
    assert await storage.append(mailbox_id, [raw_entry(W2, 3)]) == (7, 1)
    with pytest.raises(UnknownMailbox):
        await storage.compact(os.urandom(32), 1)


async def test_quotas_refuse_growth_but_not_retries(storage: Storage) -> None:
    storage.quota = Quota(max_entries=3)
    mailbox_id = await new_mailbox(storage)
    stored = [raw_entry(W1, 1), raw_entry(W1, 2)]
    await storage.append(mailbox_id, stored)
    with pytest.raises(QuotaExceeded, match="more than 3 entries"):
        await storage.append(mailbox_id, [raw_entry(W1, 3), raw_entry(W1, 4)])
    assert await storage.latest_cursor(mailbox_id) == 2  # all or nothing
    assert await storage.append(mailbox_id, [raw_entry(W1, 3)]) == (3, 1)
    assert await storage.append(mailbox_id, stored) == (3, 0)  # a full mailbox takes retries
    await storage.compact(mailbox_id, 3)  # compaction makes room again
    assert await storage.append(mailbox_id, [raw_entry(W1, 4)]) == (4, 1)
    storage.quota = Quota(max_bytes=250)
    other = await new_mailbox(storage)
    await storage.append(other, [raw_entry(W2, 1), raw_entry(W2, 2)])
    with pytest.raises(QuotaExceeded, match="more than 250 bytes"):
        await storage.append(other, [raw_entry(W2, 3)])


async def test_two_stores_on_one_database_share_cursors_and_notifications(
    open_storage: Opener, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("one relay process owns a SQLite data directory (tested above)")
    first, second = await open_storage(), await open_storage()
    mailbox_id = await new_mailbox(first)
    heard: list[int | None] = []
    first.subscribe(mailbox_id, heard.append)
    writers = [os.urandom(16) for _ in range(40)]
    results = await asyncio.gather(
        *(
            (first if i % 2 else second).append(mailbox_id, [raw_entry(w, 1), raw_entry(w, 2)])
            for i, w in enumerate(writers)
        )
    )
    assert sorted(latest for latest, _ in results) == list(range(2, 81, 2))
    rows, more = await second.read(mailbox_id, 0, 500, 10**7)
    assert [r.cursor for r in rows] == list(range(1, 81)) and not more
    for writer in writers:  # each batch's two entries are adjacent: appends are atomic
        cursors = [r.cursor for r in rows if r.writer == writer]
        assert cursors[1] == cursors[0] + 1
    async with asyncio.timeout(5):
        while not heard or heard[-1] != 80:
            await asyncio.sleep(0.01)  # the other store's appends, heard through the database
    await second.delete_mailbox(mailbox_id)
    async with asyncio.timeout(5):
        while heard[-1] is not None:
            await asyncio.sleep(0.01)
