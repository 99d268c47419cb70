"""`carnet forget`: after confirmation, no row of the patient's mailboxes is left on the relay."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from carnet.daemon.device import Device
from carnet.daemon.forget import owned_mailboxes
from carnet.daemon.paths import Paths
from carnet.protocol.mailbox import MailboxKeys
from carnet.relay.pg_cluster import PostgresCluster
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


def owned(home: Path) -> list[MailboxKeys]:
    device = Device.open(Paths.resolve(home))
    try:
        return owned_mailboxes(device)
    finally:
        device.close()


def card(carnet: Run, home: Path) -> str:
    return str(json.loads(carnet("contact", "--json", home_dir=home).output)["card"])


def test_forget_erases_the_vault_and_every_share_after_confirmation(
    carnet: Run, tmp_path: Path, relay: tuple[str, Rows]
) -> None:
    url, rows = relay
    patient, doctor = tmp_path / "home", tmp_path / "doctor"
    assert carnet("init", "--relay", url, "--no-passphrase", "--name", "Ana").exit_code == 0
    init_doctor = ("init", "--relay", url, "--no-passphrase", "--practitioner", "--name", "Dr M")
    assert carnet(*init_doctor, home_dir=doctor).exit_code == 0
    assert carnet("contact", "add", card(carnet, doctor), "--name", "martin").exit_code == 0
    assert (
        carnet("contact", "add", card(carnet, patient), "--name", "ana", home_dir=doctor).exit_code
        == 0
    )
    assert carnet("sync", home_dir=doctor).exit_code == 0
    assert carnet("add", "--practitioner", "Dr Who", "--start", "2027-01-02T10:00Z").exit_code == 0
    shared = carnet("share", "martin", "--all", "--allow-notes")
    assert shared.exit_code == 0, shared.output
    assert carnet("sync").exit_code == 0
    mailboxes = owned(patient)
    assert len(mailboxes) == 4  # vault, introduction, the share's data and notes
    # A patient's introduction mailbox is never created (nobody shares with a patient).
    stored = [keys for keys in mailboxes if rows(keys.mailbox_id)]
    assert len(stored) == 3 and mailboxes[0] in stored

    declined = carnet("forget", input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert "4 mailboxes" in declined.output
    assert all(rows(keys.mailbox_id) >= 1 for keys in stored)

    done = carnet("forget", input="y\n")
    assert done.exit_code == 0, done.output
    assert "Erased 3 mailboxes" in done.output and "3 shared mailboxes" in done.output
    assert "1 already gone" in done.output
    assert "other devices remain" in done.output
    assert all(rows(keys.mailbox_id) == 0 for keys in mailboxes)
    assert carnet("list", "--json").output.count("Dr Who") == 1  # local copies stay
    again = carnet("forget", "--yes", "--json")
    assert again.exit_code == 0, again.output
    assert '"already_gone": 4' in again.output and '"erased": 0' in again.output
