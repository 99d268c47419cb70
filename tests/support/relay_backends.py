"""A relay subprocess on either store, and answers from that store, for tests that
must hold on both (a test module imports ``backend_relay``, ``pg_cluster`` and
``pg_dsn``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from carnet.relay.pg_cluster import PostgresCluster
from tests.support.relay_process import RelayProcess, start_relay

# SQL with one `?` standing for a mailbox id -> the first row's integers (NULL as 0).
Ask = Callable[[str, bytes], list[int]]


@dataclass(frozen=True)
class BackendRelay:
    backend: str
    process: RelayProcess
    ask: Ask

    @property
    def url(self) -> str:
        return self.process.url


def _ask_sqlite(path: Path) -> Ask:
    def ask(sql: str, mailbox_id: bytes) -> list[int]:
        with sqlite3.connect(path) as conn:
            row = conn.execute(sql, (mailbox_id,)).fetchone()
        return [int(value or 0) for value in row]

    return ask


def _ask_postgres(cluster: PostgresCluster, dsn: str) -> Ask:
    def ask(sql: str, mailbox_id: bytes) -> list[int]:
        literal = f"'\\x{mailbox_id.hex()}'::bytea"
        out = cluster.psql(sql.replace("?", literal), dsn.rsplit("/", 1)[1])
        return [int(value or 0) for value in out.splitlines()[0].split("|")]

    return ask


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_relay(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendRelay]:
    data = tmp_path / "relay"
    if request.param == "sqlite":
        args: tuple[str, ...] = ()
        ask = _ask_sqlite(data / "relay.sqlite3")
    else:
        dsn: str = request.getfixturevalue("pg_dsn")
        args = ("--database", dsn)
        ask = _ask_postgres(request.getfixturevalue("pg_cluster"), dsn)
    with start_relay(data, *args) as process:
        yield BackendRelay(request.param, process, ask)
