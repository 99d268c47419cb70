"""The throwaway PostgreSQL of the test run: one server per session, a database per test.

Outside CI, a machine without PostgreSQL's server binaries skips these tests.
In CI (``CI=true``) it fails them instead: a backend left untested must not pass
as a green build.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from carnet.relay.pg_cluster import PostgresCluster, PostgresUnavailable


def unavailable(reason: str) -> None:
    """Skip, or fail in CI: never let PostgreSQL tests pass unrun there."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def start_cluster() -> PostgresCluster:
    try:
        return PostgresCluster.start()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
        raise  # unreachable: unavailable() always raises


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def pg_dsn(pg_cluster: PostgresCluster) -> str:
    """A fresh, empty database of the session's server."""
    return pg_cluster.create_database(f"t_{uuid.uuid4().hex[:16]}")
