"""Fixtures: storage backends (the conformance suite runs on each), an in-process relay."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from carnet.relay.server import create_app, make_runner
from carnet.relay.storage.base import Storage
from carnet.relay.storage.sqlite import SqliteStorage
from tests.relay.helpers import Api, FakeClock

# Add "postgresql" here (and a branch in `open_backend`) when that backend exists.
BACKENDS = ["sqlite"]

Opener = Callable[[], Awaitable[Storage]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
async def open_storage(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Opener]:
    """Opens the backend over the same database each call (to test what survives a reopen)."""
    opened: list[Storage] = []

    async def open_backend() -> Storage:
        assert request.param == "sqlite"
        storage = SqliteStorage.open(tmp_path / "relay-data", clock)
        opened.append(storage)
        return storage

    yield open_backend
    for storage in opened:
        await storage.close()


@pytest.fixture
async def storage(open_storage: Opener) -> Storage:
    return await open_storage()


@pytest.fixture
async def relay_url(storage: Storage) -> AsyncIterator[str]:
    """A real relay over `storage` on 127.0.0.1 and a free port, in this event loop."""
    runner = make_runner(create_app(storage, heartbeat=5.0, sweep_interval=0.05))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


@pytest.fixture
async def api(relay_url: str) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, relay_url)
