"""`carnet forget`: after confirmation, no row of the patient's mailboxes is left on the relay."""

from __future__ import annotations

import json
from pathlib import Path

from carnet.daemon.device import Device
from carnet.daemon.forget import owned_mailboxes
from carnet.daemon.paths import Paths
from carnet.protocol.mailbox import MailboxKeys
from tests.support.postgres import pg_cluster, pg_dsn
from tests.support.relay_backends import BackendRelay, backend_relay

from .conftest import Run

__all__ = ["backend_relay", "pg_cluster", "pg_dsn"]
TABLES = (("mailboxes", "id"), ("entries", "mailbox"), ("heads", "mailbox"))


def owned(home: Path) -> list[MailboxKeys]:
    device = Device.open(Paths.resolve(home))
    try:
        return owned_mailboxes(device)
    finally:
        device.close()


def card(carnet: Run, home: Path) -> str:
    return str(json.loads(carnet("contact", "--json", home_dir=home).output)["card"])


def test_forget_erases_the_vault_and_every_share_after_confirmation(
    carnet: Run, tmp_path: Path, backend_relay: BackendRelay
) -> None:
    url = backend_relay.url

    def rows(mailbox_id: bytes) -> int:
        """The mailbox's rows in every table of the relay's store."""
        return sum(
            backend_relay.ask(f"SELECT count(*) FROM {table} WHERE {column} = ?", mailbox_id)[0]
            for table, column in TABLES
        )

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
