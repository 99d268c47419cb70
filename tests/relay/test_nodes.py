"""Two relay processes on one PostgreSQL: live sync across nodes, restarts of either side."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from carnet.daemon.device import Device
from carnet.daemon.sync.relay_client import RelayClient
from carnet.protocol import wire
from carnet.protocol.errors import RelayError
from carnet.relay.metrics import parse
from carnet.relay.pg_cluster import PostgresCluster
from tests.relay import devices
from tests.relay.helpers import Api, new_keys, raw_entry, stored
from tests.support.postgres import start_cluster
from tests.support.relay_process import RelayProcess, start_relay


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    """A server of this module's own: these tests stop and start it."""
    server = start_cluster()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def dsn(cluster: PostgresCluster) -> str:
    return cluster.create_database(f"n_{os.urandom(6).hex()}")


@pytest.fixture
def nodes(tmp_path: Path, dsn: str) -> Iterator[tuple[RelayProcess, RelayProcess]]:
    with (
        start_relay(tmp_path / "node1", "--database", dsn) as one,
        start_relay(tmp_path / "node2", "--database", dsn) as two,
    ):
        yield one, two


@contextlib.asynccontextmanager
async def subscribed(device: Device, url: str) -> AsyncIterator[list[int]]:
    """The cursors a live subscription to `device`'s vault mailbox hears, as they come."""
    heard: list[int] = []

    async def listen() -> None:
        async with RelayClient(url) as client:
            async for cursor in client.subscribe(device.unlock().vault_mailbox, 0):
                heard.append(cursor)

    task = asyncio.ensure_future(listen())
    try:
        async with asyncio.timeout(10):
            while not heard:
                await asyncio.sleep(0.01)
        yield heard
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, RelayError):
            await task


async def until(condition: object, timeout: float = 10.0) -> float:
    """Wait for `condition()` to hold; returns the seconds it took."""
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.002)
    return time.monotonic() - started


async def gauges(url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as resp:
        return {k: v for k, v in parse(await resp.text()) if "{" not in k}


async def test_devices_on_different_nodes_sync_live(
    tmp_path: Path, nodes: tuple[RelayProcess, RelayProcess], dsn: str
) -> None:
    one, two = nodes
    phone = devices.new_device(tmp_path / "phone", one.url)
    laptop = devices.new_device(tmp_path / "laptop", two.url, like=phone)
    await devices.sync(phone, one.url)
    async with subscribed(phone, one.url) as heard:
        for n in range(3):
            devices.add(laptop, n)
            report = await devices.sync(laptop, two.url)
            # Pushed through node 2, heard on node 1: well under the single-node budget.
            assert await until(lambda c=report.cursor: heard[-1] >= c, 2.0) < 2.0
    await devices.sync(phone, one.url)
    assert devices.practitioners(phone) == {"Dr 0", "Dr 1", "Dr 2"}
    # Every node reports the same stored totals, and so does `carnet-relay stats`.
    stats = subprocess.run(
        [sys.executable, "-m", "carnet.relay.main", "stats", "--database", dsn, "--json"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    totals = json.loads(stats.stdout)
    for node in nodes:
        seen = await gauges(node.url)
        assert (
            seen["carnet_relay_mailboxes"],
            seen["carnet_relay_entries"],
            seen["carnet_relay_stored_bytes"],
        ) == (totals["mailboxes"], totals["entries"], totals["bytes"])
    assert totals["mailboxes"] == 1 and totals["entries"] >= 3


async def test_restarting_the_database_or_a_node_mid_sync_loses_nothing(
    tmp_path: Path, nodes: tuple[RelayProcess, RelayProcess], cluster: PostgresCluster
) -> None:
    one, two = nodes
    phone = devices.new_device(tmp_path / "phone", one.url)
    laptop = devices.new_device(tmp_path / "laptop", two.url, like=phone)
    await devices.sync(phone, one.url)
    synced: list[int] = []
    done = asyncio.Event()

    async def keep_writing() -> None:
        """The laptop adds a record and syncs, again and again, riding out the outages."""
        for n in range(60):
            devices.add(laptop, n)
            while True:
                try:
                    synced.append((await devices.sync(laptop, two.url)).cursor)
                    break
                except RelayError:
                    await asyncio.sleep(0.1)
            await asyncio.sleep(0.02)
        done.set()

    async with subscribed(phone, one.url) as heard:
        writer = asyncio.ensure_future(keep_writing())
        await until(lambda: len(synced) >= 5)
        await asyncio.to_thread(cluster.down)
        async with aiohttp.ClientSession() as session:
            keys = phone.unlock().vault_mailbox
            path = wire.mailbox_path(keys.mailbox_id, "/entries")
            reply = await Api(session, one.url).call("GET", path, key=keys.read_signer())
        assert (reply.status, reply.error) == (503, "storage_unavailable")
        assert reply.headers["Retry-After"] == "1"
        await asyncio.sleep(1.0)
        await asyncio.to_thread(cluster.up)
        count = len(synced)
        await until(lambda: len(synced) >= count + 5, 30)
        await asyncio.to_thread(two.restart)
        count = len(synced)
        await until(lambda: len(synced) >= count + 5, 30)
        await asyncio.wait_for(writer, 60)
        # The subscription on node 1 lived through it all and heard the last append.
        await until(lambda: heard[-1] >= synced[-1], 10)
    await devices.sync(phone, one.url)
    assert devices.practitioners(phone) == {f"Dr {n}" for n in range(60)}
    assert one.logs().count("database notifications restored") == 1


async def test_concurrent_appends_through_both_nodes_are_grouped_yet_each_its_own(
    tmp_path: Path, dsn: str
) -> None:
    """Many clients at once, through both nodes: each node groups its appends into shared
    commits, and still every append is answered for itself (a gap refused alone) and
    every mailbox's cursors stay contiguous, whichever node wrote."""
    unlimited = ("--database", dsn, "--rate-per-address", "0", "--rate-per-connection", "0")
    with (
        start_relay(tmp_path / "node1", *unlimited) as one,
        start_relay(tmp_path / "node2", *unlimited) as two,
    ):
        await _append_through(one, two)


async def _append_through(one: RelayProcess, two: RelayProcess) -> None:
    nodes = (one, two)
    mailboxes = [new_keys() for _ in range(24)]
    writers = {node.url: os.urandom(16) for node in nodes}
    rounds = 8
    async with aiohttp.ClientSession() as session:
        apis = {node.url: Api(session, node.url) for node in nodes}
        for keys in mailboxes:
            assert (await apis[one.url].create(keys)).status == 201

        async def feed(url: str) -> list[int]:
            statuses: list[int] = []
            for seq in range(1, rounds + 1):
                replies = await asyncio.gather(
                    *(apis[url].append(k, [raw_entry(writers[url], seq)]) for k in mailboxes)
                )
                statuses += [reply.status for reply in replies]
            return statuses

        gap = apis[two.url].append(mailboxes[0], [raw_entry(os.urandom(16), 2)])
        results = await asyncio.gather(feed(one.url), feed(two.url), gap)
        assert results[0] == results[1] == [200] * (rounds * len(mailboxes))
        assert (results[2].status, results[2].error) == (409, "seq_gap")
        for keys in mailboxes:
            page = await apis[one.url].read(keys)
            rows = stored(page)
            assert [cursor for cursor, _, _ in rows] == list(range(1, 2 * rounds + 1))
            for writer in writers.values():
                assert [s for _, w, s in rows if w == writer.hex()] == list(range(1, rounds + 1))
