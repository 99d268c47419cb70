"""The PostgreSQL schema, versioned in a one-row ``schema_version`` table.

Same tables as SQLite's (``schema``), in PostgreSQL's types. Several relay
processes may start at once against one database: migrating runs under a
transaction-level advisory lock, so exactly one of them migrates and the others
then find the schema current.
"""

from __future__ import annotations

import asyncpg

from carnet.relay.storage.schema import pending

# An arbitrary constant naming "carnet-relay migrations" among advisory locks.
MIGRATION_LOCK = 0x63_61_72_6E_65_74  # "carnet"

MIGRATIONS: tuple[str, ...] = (
    # 1: as SQLite's 1 and 2 together. Entry data is random-looking ciphertext:
    # STORAGE EXTERNAL spares PostgreSQL a compression attempt that cannot pay off.
    """
    CREATE TABLE mailboxes (
        id bytea PRIMARY KEY,
        write_key bytea NOT NULL,
        read_key bytea NOT NULL,
        expires_at double precision,
        latest bigint NOT NULL DEFAULT 0,
        entries bigint NOT NULL DEFAULT 0,
        bytes bigint NOT NULL DEFAULT 0
    );
    CREATE INDEX mailboxes_expiry ON mailboxes (expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE entries (
        mailbox bytea NOT NULL,
        cursor bigint NOT NULL,
        writer bytea NOT NULL,
        seq bigint NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (mailbox, cursor),
        UNIQUE (mailbox, writer, seq)
    );
    ALTER TABLE entries ALTER COLUMN data SET STORAGE EXTERNAL;
    CREATE TABLE heads (
        mailbox bytea NOT NULL,
        writer bytea NOT NULL,
        seq bigint NOT NULL,
        PRIMARY KEY (mailbox, writer)
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


async def current_version(conn: asyncpg.Connection) -> int:
    """The database's schema version; 0 when the relay never ran on it."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT max(version) FROM schema_version") or 0)


async def migrate(conn: asyncpg.Connection) -> int:
    """Bring the database to SCHEMA_VERSION; return the version it had before."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        version = await current_version(conn)
        for number in pending(version, MIGRATIONS):
            await conn.execute(MIGRATIONS[number])
        if version != SCHEMA_VERSION:
            await conn.execute("DELETE FROM schema_version")
            await conn.execute("INSERT INTO schema_version VALUES ($1)", SCHEMA_VERSION)
    return version
