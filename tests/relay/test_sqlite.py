"""What is specific to the SQLite backend: its file, schema version, pragmas and lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from carnet.relay.storage.base import DataDirInUse, SchemaTooNew, StorageError
from carnet.relay.storage.schema import SCHEMA_VERSION, migrate
from carnet.relay.storage.sqlite import DB_NAME, SqliteStorage


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
