"""The SQLite schema, versioned through ``PRAGMA user_version``.

Each migration takes the database from version ``i`` to ``i + 1``; a database
is only ever moved forward, inside one transaction, and a relay refuses one
written by a newer version rather than guess at it. PostgreSQL's schema is in
``postgres_schema``.
"""

from __future__ import annotations

import sqlite3

from carnet.relay.storage.base import SchemaTooNew

MIGRATIONS: tuple[str, ...] = (
    # 1: mailboxes keep their latest cursor and byte total, so an append allocates
    # cursors and stats() sums without scanning entries. `entries` keeps its rowid:
    # entries are 1 to 64 KiB, too large for a WITHOUT ROWID b-tree.
    """
    CREATE TABLE mailboxes (
        id BLOB PRIMARY KEY,
        write_key BLOB NOT NULL,
        read_key BLOB NOT NULL,
        expires_at REAL,
        latest INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE INDEX mailboxes_expiry ON mailboxes (expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE entries (
        mailbox BLOB NOT NULL,
        cursor INTEGER NOT NULL,
        writer BLOB NOT NULL,
        seq INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (mailbox, cursor),
        UNIQUE (mailbox, writer, seq)
    );
    """,
    # 2: writer heads live apart from entries, so compaction can drop entries and a
    # retried old entry is still known as old; `entries` counts what is still stored
    # (quotas and stats), which compaction makes differ from `latest`.
    """
    ALTER TABLE mailboxes ADD COLUMN entries INTEGER NOT NULL DEFAULT 0;
    UPDATE mailboxes SET entries = (SELECT COUNT(*) FROM entries WHERE mailbox = id);
    CREATE TABLE heads (
        mailbox BLOB NOT NULL,
        writer BLOB NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (mailbox, writer)
    ) WITHOUT ROWID;
    INSERT INTO heads SELECT mailbox, writer, MAX(seq) FROM entries GROUP BY mailbox, writer;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def pending(version: int, migrations: tuple[str, ...]) -> range:
    """The migrations a database at `version` needs; refuses one from a newer relay."""
    if version > len(migrations):
        raise SchemaTooNew(
            f"database schema {version} is newer than this relay's {len(migrations)}"
        )
    return range(version, len(migrations))


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION; return the version it had before."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        for number in pending(version, MIGRATIONS):
            for statement in MIGRATIONS[number].split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return int(version)
