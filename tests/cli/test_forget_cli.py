"""`carnet forget`: after confirmation, no row of the patient's mailboxes is left on the relay."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from carnet.daemon.device import Device
from carnet.daemon.paths import Paths
from carnet.protocol.mailbox import MailboxKeys
from carnet.relay.pg_cluster import PostgresCluster
from tests.relay.helpers import Api, new_keys
from tests.relay.helpers import Device as Feed
from tests.support.postgres import pg_cluster, pg_dsn
from tests.support.relay_process import start_relay

from .conftest import Run

__all__ = ["pg_cluster", "pg_dsn"]
TABLES = (("mailboxes", "id"), ("entries", "mailbox"), ("heads", "mailbox"))
Rows = Callable[[bytes], int]


@pytest.fixture(params=["sqlite", "postgresql"])
def relay(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Rows]]:
    """A relay subprocess on either backend, and a count of a mailbox's rows in its store."""
    data = tmp_path / "relay"
    if request.param == "sqlite":
        args: tuple[str, ...] = ()

        def rows(mailbox_id: bytes) -> int:
            with sqlite3.connect(data / "relay.sqlite3") as conn:
                return sum(
                    conn.execute(
                        f"SELECT count(*) FROM {t} WHERE {c} = ?", (mailbox_id,)
                    ).fetchone()[0]
                    for t, c in TABLES
                )
    else:
        dsn: str = request.getfixturevalue("pg_dsn")
        cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
        args = ("--database", dsn)

        def rows(mailbox_id: bytes) -> int:
            total = 0
            for table, column in TABLES:
                sql = f"SELECT count(*) FROM {table} WHERE {column} = '\\x{mailbox_id.hex()}'"
                total += int(cluster.psql(sql, dsn.rsplit("/", 1)[1]))
            return total

    with start_relay(data, *args) as process:
        yield process.url, rows


def vault(home: Path) -> MailboxKeys:
    return Device.open(Paths.resolve(home)).unlock().vault_mailbox


async def shared_mailbox(url: str) -> MailboxKeys:
    """A mailbox as sharing would own one: created, with entries."""
    keys = new_keys()
    async with aiohttp.ClientSession() as session:
        api = Api(session, url)
        await api.create(keys)
        await api.append(keys, Feed(keys).batch(2))
    return keys


def test_forget_erases_every_owned_mailbox_after_confirmation(
    carnet: Run, tmp_path: Path, relay: tuple[str, Rows], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, rows = relay
    assert carnet("init", "--relay", url, "--no-passphrase").exit_code == 0
    assert carnet("add", "--practitioner", "Dr Who", "--start", "2027-01-02T10:00Z").exit_code == 0
    assert carnet("sync").exit_code == 0
    keys = vault(tmp_path / "home")
    shared = asyncio.run(shared_mailbox(url))
    sharing = types.ModuleType("carnet.daemon.sharing")
    sharing.owned_mailboxes = lambda device: [shared, device.unlock().vault_mailbox]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "carnet.daemon.sharing", sharing)
    assert rows(keys.mailbox_id) >= 3 and rows(shared.mailbox_id) == 4  # mailbox, 2 entries, 1 head

    declined = carnet("forget", input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert "2 mailboxes" in declined.output
    assert rows(keys.mailbox_id) >= 3

    done = carnet("forget", input="y\n")
    assert done.exit_code == 0, done.output
    assert "Erased 2 mailboxes" in done.output and "1 shared mailbox" in done.output
    assert "other devices remain" in done.output
    assert rows(keys.mailbox_id) == 0 and rows(shared.mailbox_id) == 0
    assert carnet("list", "--json").output.count("Dr Who") == 1  # local copies stay

    again = carnet("forget", "--yes", "--json")
    assert again.exit_code == 0, again.output
    assert '"already_gone": 2' in again.output and '"erased": 0' in again.output


def test_forget_without_sharing_erases_the_vault(
    carnet: Run, tmp_path: Path, relay: tuple[str, Rows], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, rows = relay
    monkeypatch.setitem(sys.modules, "carnet.daemon.sharing", None)  # import fails
    assert carnet("init", "--relay", url, "--no-passphrase").exit_code == 0
    assert carnet("sync").exit_code == 0
    keys = vault(tmp_path / "home")
    assert rows(keys.mailbox_id) >= 1
    done = carnet("forget", "--yes")
    assert done.exit_code == 0 and "Erased 1 mailbox" in done.output, done.output
    assert rows(keys.mailbox_id) == 0
