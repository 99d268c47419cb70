"""What is specific to the SQLite backend: its file, schema version, pragmas and lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from carnet.relay.storage.base import DataDirInUse, SchemaTooNew, StorageError
from carnet.relay.storage.schema import MIGRATIONS, SCHEMA_VERSION, migrate
from carnet.relay.storage.sqlite import DB_NAME, SqliteStorage
from tests.relay.helpers import FakeClock, raw_entry


async def test_new_database_is_durable_wal_at_the_current_schema(tmp_path: Path) -> None:
    storage = SqliteStorage.open(tmp_path / "data")
    try:
        conn = storage._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert (tmp_path / "data").stat().st_mode & 0o077 == 0
    finally:
        await storage.close()


def test_migrate_is_idempotent_and_refuses_a_newer_schema(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    assert migrate(conn) == 0
    assert migrate(conn) == SCHEMA_VERSION
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNew):
        migrate(conn)
    conn.close()


async def test_one_relay_per_data_directory(tmp_path: Path) -> None:
    storage = SqliteStorage.open(tmp_path)
    with pytest.raises(DataDirInUse):
        SqliteStorage.open(tmp_path)
    await storage.close()
    await SqliteStorage.open(tmp_path).close()  # the lock goes with the first


async def test_read_only_opening_for_stats(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no relay database"):
        SqliteStorage.open_readonly(tmp_path)
    (tmp_path / DB_NAME).write_bytes(b"not a database at all, " * 100)
    with pytest.raises(StorageError, match="cannot read"):
        SqliteStorage.open_readonly(tmp_path)
    with pytest.raises(StorageError, match="cannot open"):
        SqliteStorage.open(tmp_path)


async def test_erasure_and_sweeps_leave_no_row(tmp_path: Path) -> None:
    clock = FakeClock()
    storage = SqliteStorage.open(tmp_path, clock)
    erased, expiring = b"e" * 32, b"x" * 32
    await storage.create_mailbox(erased, b"w" * 32, b"r" * 32)
    await storage.create_mailbox(expiring, b"w" * 32, b"r" * 32, ttl=5)
    for mailbox_id in (erased, expiring):
        await storage.append(mailbox_id, [raw_entry(b"1" * 16, 1), raw_entry(b"1" * 16, 2)])
    assert await storage.delete_mailbox(erased)
    clock.advance(5)
    assert await storage.sweep_expired() == 1
    await storage.close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    for table in ("mailboxes", "entries", "heads"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    conn.close()


async def test_a_version_1_database_gains_heads_and_entry_counts(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    conn.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    conn.execute("INSERT INTO mailboxes (id, write_key, read_key, latest, bytes) VALUES"
                 " (x'01', x'02', x'03', 3, 30)")  # fmt: skip
    for cursor, writer, seq in ((1, b"a", 1), (2, b"b", 1), (3, b"a", 2)):
        conn.execute(
            "INSERT INTO entries VALUES (x'01', ?, ?, ?, ?)", (cursor, writer, seq, b"x" * 10)
        )
    conn.close()
    storage = SqliteStorage.open(tmp_path)
    try:
        assert sorted(storage._conn.execute("SELECT writer, seq FROM heads")) == [
            (b"a", 2),
            (b"b", 1),
        ]
        assert (await storage.stats()).entries == 3
    finally:
        await storage.close()
