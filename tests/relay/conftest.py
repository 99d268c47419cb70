"""Fixtures: storage backends (the conformance suite runs on each), an in-process relay."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from carnet.relay.server import create_app, make_runner
from carnet.relay.storage.base import Storage
from carnet.relay.storage.postgres import PostgresStorage
from carnet.relay.storage.sqlite import SqliteStorage
from tests.relay.helpers import Api, FakeClock
from tests.support.postgres import pg_cluster, pg_dsn

BACKENDS = ["sqlite", "postgresql"]

Opener = Callable[[], Awaitable[Storage]]
__all__ = ["pg_cluster", "pg_dsn"]  # fixtures, re-exported for the tests of this folder


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
async def open_storage(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Opener]:
    """Opens the backend over the same database each call (to test what survives a reopen).

    On PostgreSQL, each call is a new pool and LISTEN connection on one fresh
    database: what several relay processes sharing it would be.
    """
    opened: list[Storage] = []
    dsn = request.getfixturevalue("pg_dsn") if request.param == "postgresql" else ""

    async def open_backend() -> Storage:
        storage: Storage
        if request.param == "postgresql":
            storage = await PostgresStorage.open(dsn, clock)
        else:
            storage = SqliteStorage.open(tmp_path / "relay-data", clock)
        opened.append(storage)
        return storage

    yield open_backend
    for storage in opened:
        await storage.close()


@pytest.fixture
def backend(open_storage: Opener, request: pytest.FixtureRequest) -> str:
    """The name of the backend `open_storage` opens."""
    return str(request.node.callspec.params["open_storage"])


@pytest.fixture
async def storage(open_storage: Opener) -> Storage:
    return await open_storage()


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 and a free port, in this event loop; yields its URL."""
    runner = make_runner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def relay_url(storage: Storage) -> AsyncIterator[str]:
    """A real relay over `storage` (no operating limits), in this event loop."""
    async with serving(create_app(storage, heartbeat=5.0, sweep_interval=0.05)) as url:
        yield url


@pytest.fixture
async def api(relay_url: str) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, relay_url)
