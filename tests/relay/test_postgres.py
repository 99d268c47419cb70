"""What is specific to the PostgreSQL backend: schema versions, no leftovers, outages."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import asyncpg
import pytest

from carnet.relay.pg_cluster import PostgresCluster
from carnet.relay.storage import postgres_schema
from carnet.relay.storage.base import SchemaTooNew, StorageError, StorageUnavailable
from carnet.relay.storage.postgres import PostgresStorage
from tests.relay.helpers import FakeClock, raw_entry
from tests.support.postgres import pg_cluster, pg_dsn, start_cluster, unavailable

__all__ = ["pg_cluster", "pg_dsn"]
W1 = b"\x01" * 16


async def rows_of(dsn: str, mailbox_id: bytes) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            table: await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE {column} = $1", mailbox_id
            )
            for table, column in (("mailboxes", "id"), ("entries", "mailbox"), ("heads", "mailbox"))
        }
    finally:
        await conn.close()


async def test_schema_is_versioned_and_migrations_are_idempotent(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await postgres_schema.migrate(conn) == 0
        assert await postgres_schema.migrate(conn) == postgres_schema.SCHEMA_VERSION
        assert await conn.fetchval("SELECT version FROM schema_version") == 1
        await conn.execute("UPDATE schema_version SET version = 99")
        with pytest.raises(SchemaTooNew):
            await postgres_schema.migrate(conn)
        with pytest.raises(StorageError, match="schema 99"):
            await PostgresStorage.open(pg_dsn, migrate=False, listen=False)
    finally:
        await conn.close()


async def test_several_relays_migrate_one_database_at_once(pg_dsn: str) -> None:
    stores = await asyncio.gather(*(PostgresStorage.open(pg_dsn) for _ in range(4)))
    for store in stores:
        await store.close()


async def test_erasure_and_sweeps_leave_no_row(pg_dsn: str) -> None:
    clock = FakeClock()
    storage = await PostgresStorage.open(pg_dsn, clock)
    try:
        erased, expiring = os.urandom(32), os.urandom(32)
        await storage.create_mailbox(erased, b"w" * 32, b"r" * 32)
        await storage.create_mailbox(expiring, b"w" * 32, b"r" * 32, ttl=5)
        for mailbox_id in (erased, expiring):
            await storage.append(mailbox_id, [raw_entry(W1, 1), raw_entry(W1, 2)])
            assert (await rows_of(pg_dsn, mailbox_id))["entries"] == 2
        assert await storage.delete_mailbox(erased)
        clock.advance(5)
        assert await storage.sweep_expired() == 1
        for mailbox_id in (erased, expiring):
            assert await rows_of(pg_dsn, mailbox_id) == {"mailboxes": 0, "entries": 0, "heads": 0}
    finally:
        await storage.close()


async def test_unreachable_or_refusing_databases_are_one_line_errors(pg_dsn: str) -> None:
    with pytest.raises(StorageError, match=r"cannot reach the database \(\w+\)"):
        await PostgresStorage.open("postgresql://postgres@127.0.0.1:1/x")
    with pytest.raises(StorageError, match='database "nowhere" does not exist'):
        await PostgresStorage.open(pg_dsn.rsplit("/", 1)[0] + "/nowhere")


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[PostgresCluster]:
    """A server of its own, for tests that stop it."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.remove()


async def test_database_outage_is_503_then_recovery_and_renotification(
    own_cluster: PostgresCluster,
) -> None:
    dsn = own_cluster.create_database(f"o_{os.urandom(4).hex()}")
    relay, writer = await PostgresStorage.open(dsn), await PostgresStorage.open(dsn)
    try:
        mailbox_id = os.urandom(32)
        await relay.create_mailbox(mailbox_id, b"w" * 32, b"r" * 32)
        heard: list[int | None] = []
        relay.subscribe(mailbox_id, heard.append)
        await writer.append(mailbox_id, [raw_entry(W1, 1)])
        await asyncio.to_thread(own_cluster.down)
        with pytest.raises(StorageUnavailable):
            await relay.append(mailbox_id, [raw_entry(W1, 2)])
        with pytest.raises(StorageUnavailable):
            await relay.latest_cursor(mailbox_id)
        await asyncio.to_thread(own_cluster.up)
        # The pools reconnect by themselves: a request or two may still meet a dead connection.
        async with asyncio.timeout(20):
            while True:
                try:
                    await writer.append(mailbox_id, [raw_entry(W1, 2)])
                    break
                except StorageUnavailable:
                    await asyncio.sleep(0.1)
            # Heard through NOTIFY if the listener was back in time, else by the re-read
            # that follows its reconnection: either way, nothing is missed.
            while heard[-1:] != [2]:
                await asyncio.sleep(0.05)
        assert await relay.latest_cursor(mailbox_id) == 2
    finally:
        await relay.close()
        await writer.close()


async def test_a_cut_notification_connection_is_replaced_and_reread(pg_dsn: str) -> None:
    relay, writer = await PostgresStorage.open(pg_dsn), await PostgresStorage.open(pg_dsn)
    try:
        mailbox_id = os.urandom(32)
        await writer.create_mailbox(mailbox_id, b"w" * 32, b"r" * 32)
        heard: list[int | None] = []
        relay.subscribe(mailbox_id, heard.append)
        assert relay._listener is not None and relay._listener._conn is not None
        pid = relay._listener._conn.get_server_pid()
        conn = await asyncpg.connect(pg_dsn)
        await conn.execute("SELECT pg_terminate_backend($1)", pid)
        await conn.close()
        await writer.append(mailbox_id, [raw_entry(W1, 1)])  # likely sent while nobody listens
        async with asyncio.timeout(10):
            while heard[-1:] != [1]:
                await asyncio.sleep(0.05)
        await writer.append(mailbox_id, [raw_entry(W1, 2)])
        async with asyncio.timeout(10):
            while heard[-1:] != [2]:
                await asyncio.sleep(0.05)
    finally:
        await relay.close()
        await writer.close()


def test_without_postgres_ci_fails_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required in CI"):
        unavailable("no server binaries")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception):
        unavailable("no server binaries")
