"""Issue 5: devices compact the vault's history behind snapshots, and nothing is lost.

Devices run in-process through the CLI (``tests.sharing.conftest.Person``)
against the real relay subprocess; what the relay keeps is read from its
SQLite file.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from carnet.daemon.records import RECORD_LIMIT
from carnet.daemon.sharing.vault_ops import state_ops
from carnet.daemon.store import Store
from carnet.daemon.sync import outbox, overdue, snapshot
from carnet.daemon.sync.pull import read_cursor
from carnet.daemon.sync.relay_client import RelayClient
from carnet.daemon.sync.transfer import push
from carnet.protocol.errors import RelayUnreachable
from carnet.protocol.mailbox import MailboxKeys
from tests.sharing.conftest import Person, add, init, join, pinned_pair
from tests.support.postgres import pg_cluster, pg_dsn
from tests.support.relay_backends import BackendRelay, backend_relay
from tests.support.relay_process import RelayProcess

__all__ = ["backend_relay", "pg_cluster", "pg_dsn"]


def vault_entries(relay: RelayProcess, person: Person) -> list[tuple[int, bytes, int]]:
    """(cursor, writer, seq) of every entry the relay keeps in `person`'s vault."""
    with person.device() as device:
        mailbox = device.unlock().vault_mailbox.mailbox_id
    db = sqlite3.connect(next(relay.data_dir.glob("*.sqlite3")))
    try:
        return db.execute(
            "SELECT cursor, writer, seq FROM entries WHERE mailbox = ? ORDER BY cursor",
            (mailbox,),
        ).fetchall()
    finally:
        db.close()


def history(person: Person, count: int, label: str) -> list[str]:
    """`count` appointments, each synced on its own (one entry each), then edits and a delete."""
    ids = []
    for day in range(1, count + 1):
        ids.append(add(person, "cardiology", f"2027-03-{day:02d}T09:00+01:00", f"Dr {label}{day}"))
        person.run("sync")
    person.run("edit", ids[0], "--reason", "contrôle annuel")
    person.run("delete", ids[1])
    person.run("sync")
    return ids


def records(person: Person) -> list[dict[str, Any]]:
    return list(person.json("list"))


def alerts(person: Person) -> list[dict[str, str]]:
    return list(person.json("status")["alerts"])


def laptop_and_phone(tmp_path: Path, url: str) -> tuple[Person, Person]:
    laptop = init(tmp_path / "laptop", url, "Ana")
    return laptop, join(tmp_path / "phone", laptop, url, "phone")


def vault_position(person: Person) -> tuple[int, bool]:
    """`person`'s read cursor in its vault, and whether a snapshot is due there."""
    with person.device() as device:
        keys = device.unlock().vault_mailbox
        return read_cursor(device.store, keys), snapshot.due(device.store, keys)


async def snapshot_by_hand(
    person: Person, send: Callable[[Store, RelayClient, MailboxKeys], Awaitable[None]]
) -> int:
    """Seal a snapshot on `person`'s device, `send` it, then compact as a round would."""
    with person.device() as device:
        secrets = device.unlock()
        keys, store = secrets.vault_mailbox, device.store
        snapshot.seal(store, keys, secrets.writer, state_ops(store))
        async with RelayClient(device.config.relay) as client:
            await send(store, client, keys)
            return await snapshot.compact(
                store, client, keys, keys.writer_tag(secrets.writer.public_key)
            )


async def push_all(store: Store, client: RelayClient, keys: MailboxKeys) -> None:
    await push(store, client, keys, None)


def test_a_device_joining_after_compaction_rebuilds_everything(
    backend_relay: BackendRelay, tmp_path: Path
) -> None:
    url = backend_relay.url
    laptop, phone = laptop_and_phone(tmp_path, url)
    ids = history(laptop, 6, "L")
    history(phone, 3, "P")
    laptop.run("sync")
    with laptop.device() as device:
        vault = device.unlock().vault_mailbox.mailbox_id

    def stored() -> tuple[int, int, int]:
        """The vault's entries on the relay: how many, the first and last cursor."""
        sql = "SELECT count(*), min(cursor), max(cursor) FROM entries WHERE mailbox = ?"
        count, first, last = backend_relay.ask(sql, vault)
        return count, first, last

    before, _, last = stored()
    done = laptop.json("compact")
    after, first, _ = stored()
    assert done["snapshot_entries"] >= 2 and done["compacted"] == before
    assert after == done["snapshot_entries"] and first > last  # only the snapshot is left

    # The phone, which has read everything, keeps writing from where it was.
    add(phone, "dermatology", "2027-04-01T10:00+02:00", "Dr After")
    phone.run("sync")
    tablet = join(tmp_path / "tablet", laptop, url, "tablet")
    laptop.run("sync")
    assert records(tablet) == records(laptop) == records(phone)
    assert len(records(tablet)) == 6 - 1 + 3 - 1 + 1
    shown = {r["id"]: r for r in records(tablet)}
    assert ids[1] not in shown and shown[ids[0]]["reason"] == "contrôle annuel"
    devices = {d["name"] for d in tablet.json("device", "list")}
    assert {"phone", "tablet"} <= devices and len(devices) == 3
    assert not alerts(tablet) and not alerts(phone) and not alerts(laptop)


def test_a_device_offline_during_compaction_catches_up(relay: RelayProcess, tmp_path: Path) -> None:
    laptop, phone = laptop_and_phone(tmp_path, relay.url)
    history(laptop, 2, "L")
    phone.run("sync")
    ids = history(laptop, 5, "M")  # the phone is away
    said = laptop.run("compact").stdout
    assert said.startswith("Wrote a snapshot (") and "the relay dropped" in said
    add(phone, "ophthalmology", "2027-05-01T10:00+02:00", "Dr Offline")  # written offline
    phone.run("sync")
    laptop.run("sync")
    assert records(phone) == records(laptop)
    assert len(records(phone)) == 2 - 1 + 5 - 1 + 1
    assert ids[1] not in {r["id"] for r in records(phone)}
    assert not alerts(phone) and not alerts(laptop)


def test_compaction_waits_while_another_device_wrote_after_the_snapshot_state(
    relay: RelayProcess, tmp_path: Path
) -> None:
    laptop, phone = laptop_and_phone(tmp_path, relay.url)
    history(laptop, 3, "L")
    laptop.run("sync")
    add(phone, "dermatology", "2027-04-01T10:00+02:00", "Dr Race")
    phone.run("sync")  # lands after the cursor the laptop's state was taken at

    stored = vault_entries(relay, laptop)
    assert asyncio.run(snapshot_by_hand(laptop, push_all)) == 0
    assert vault_entries(relay, laptop)[: len(stored)] == stored  # the phone's is not covered
    assert vault_position(laptop)[1]  # so the next round tries again, whatever the history
    assert laptop.json("compact")["compacted"] > 0  # the next snapshot has it
    tablet = join(tmp_path / "tablet", laptop, relay.url, "tablet")
    assert "Dr Race" in {r["practitioner"] for r in records(tablet)}


def test_a_snapshot_sealed_before_a_crash_is_compacted_by_the_next_round(
    relay: RelayProcess, tmp_path: Path
) -> None:
    laptop = init(tmp_path / "laptop", relay.url, "Ana")
    history(laptop, 3, "L")
    with laptop.device() as device:  # sealed, then the process dies before pushing
        secrets = device.unlock()
        snapshot.seal(device.store, secrets.vault_mailbox, secrets.writer, state_ops(device.store))
    report = laptop.json("sync")
    assert report["compacted"] > 0 and report["snapshot_entries"] == 0
    assert laptop.json("sync")["compacted"] == 0  # done once
    tablet = join(tmp_path / "tablet", laptop, relay.url, "tablet")
    assert records(tablet) == records(laptop)


def test_rounds_snapshot_by_themselves_as_history_grows(
    relay: RelayProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot, "SNAPSHOT_AFTER", 5)
    laptop, phone = laptop_and_phone(tmp_path, relay.url)
    reports = []
    for day in range(1, 21):
        writer = (laptop, phone)[day % 2]
        add(writer, "dermatology", f"2027-04-{day:02d}T10:00+02:00", f"Dr {day}")
        reports.append(writer.json("sync"))
    snapshots = [r for r in reports if r["snapshot_entries"]]
    # Each writes about one entry per round and reads the other's: a snapshot
    # every few rounds, not every round, each compacting what came before.
    assert 2 <= len(snapshots) <= 20 // 4
    assert all(r["compacted"] > 0 for r in snapshots)
    assert len(vault_entries(relay, laptop)) < 20
    tablet = join(tmp_path / "tablet", laptop, relay.url, "tablet")
    phone.run("sync")
    laptop.run("sync")
    assert records(tablet) == records(phone) == records(laptop) and len(records(tablet)) == 20
    assert not alerts(tablet) and not alerts(phone) and not alerts(laptop)


def test_an_uncovered_entry_deleted_after_compaction_is_still_refused(
    relay: RelayProcess, tmp_path: Path
) -> None:
    laptop, phone = laptop_and_phone(tmp_path, relay.url)
    history(laptop, 2, "L")
    phone.run("sync")
    laptop.run("compact")
    for day in (1, 2):
        add(phone, "dermatology", f"2027-04-{day:02d}T10:00+02:00", f"Dr Later{day}")
        phone.run("sync")
    _, writer, seq = vault_entries(relay, laptop)[-2]  # the phone's first one since
    db = sqlite3.connect(next(relay.data_dir.glob("*.sqlite3")), isolation_level=None)
    db.execute("DELETE FROM entries WHERE writer = ? AND seq = ?", (writer, seq))
    db.close()
    laptop.run("sync", code=1)
    assert any("missing entry" in a["message"] for a in alerts(laptop))


def test_shares_contacts_and_the_audit_log_survive_compaction(
    relay: RelayProcess, tmp_path: Path
) -> None:
    patient, doctor = pinned_pair(tmp_path, relay.url)
    add(patient, "cardiology", "2027-01-10T09:00+01:00")
    patient.run("share", "martin", "--specialty", "cardiology")
    patient.run("sync")
    doctor.run("sync")
    assert patient.json("compact")["compacted"] > 0
    assert doctor.json("compact")["compacted"] > 0

    patient_phone = join(tmp_path / "patient-phone", patient, relay.url, "phone")
    doctor_tablet = join(tmp_path / "doctor-tablet", doctor, relay.url, "tablet")

    def shares(person: Person) -> list[tuple[str, str, str]]:
        return [(s["id"], s["scope"], s["state"]) for s in person.json("shares")]

    assert shares(patient_phone) == shares(patient) and len(shares(patient)) == 1
    assert patient_phone.json("contact", "list") == patient.json("contact", "list")
    assert doctor_tablet.json("patients") == doctor.json("patients")
    logged = {e["id"] for e in patient.json("log")["events"]}
    assert logged <= {e["id"] for e in patient_phone.json("log")["events"]}
    # The new phone publishes to the share it learnt from the snapshot.
    add(patient_phone, "cardiology", "2027-02-10T09:00+01:00", "Dr Later")
    patient_phone.run("sync")
    doctor_tablet.run("sync")
    assert "Dr Later" in {r["practitioner"] for r in doctor_tablet.json("list", "--patient", "ana")}


def test_a_compaction_the_relay_did_not_answer_is_tried_again(
    relay: RelayProcess, tmp_path: Path
) -> None:
    laptop = init(tmp_path / "laptop", relay.url, "Ana")
    history(laptop, 3, "L")

    async def push_then_lose_the_relay(
        store: Store, client: RelayClient, keys: MailboxKeys
    ) -> None:
        await push_all(store, client, keys)
        relay.stop()

    with pytest.raises(RelayUnreachable):
        asyncio.run(snapshot_by_hand(laptop, push_then_lose_the_relay))
    relay.restart()
    report = laptop.json("sync")
    assert report["compacted"] > 0 and report["snapshot_entries"] == 0


def test_a_record_merged_larger_than_one_device_may_write_still_snapshots(
    relay: RelayProcess, tmp_path: Path
) -> None:
    laptop, phone = laptop_and_phone(tmp_path, relay.url)
    record = add(laptop, "cardiology", "2027-01-10T09:00+01:00")
    laptop.run("sync")
    phone.run("sync")
    emoji = "😀" * 4000  # 16,000 bytes of UTF-8

    def fill(person: Person, big: tuple[str, str], rest: str) -> None:
        """Two big fields, and a third filling the record up to what one device may write."""
        shown = {**person.json("show", record), big[0]: emoji, big[1]: emoji, rest: ""}
        room = RECORD_LIMIT - len(json.dumps(shown, ensure_ascii=False).encode())
        values = {big[0]: emoji, big[1]: emoji, rest: "😀" * (room // 4 - 1)}
        person.run("edit", record, *(a for k, v in values.items() for a in (f"--{k}", v)))

    fill(laptop, ("notes", "reason"), "practitioner-id")
    fill(phone, ("location", "patient-instruction"), "practitioner")
    for device in (laptop, phone, laptop):
        device.run("sync")
    assert laptop.json("compact")["compacted"] > 0
    add(laptop, "dermatology", "2027-02-10T09:00+01:00", "Dr Next")
    laptop.run("sync")
    phone.run("sync")
    tablet = join(tmp_path / "tablet", laptop, relay.url, "tablet")
    assert records(tablet) == records(phone) == records(laptop)
    assert tablet.json("show", record)["location"] == emoji


def test_a_device_never_compacts_what_a_newer_version_wrote(
    relay: RelayProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    newer = init(tmp_path / "newer", relay.url, "Ana")
    older = join(tmp_path / "older", newer, relay.url, "older")
    add(newer, "cardiology", "2027-01-10T09:00+01:00")
    with newer.device() as device:  # what a version 2 would write: a kind version 1 skips
        secrets = device.unlock()
        with device.store.transaction():
            body = {"ops": [{"t": "reminder-pref", "lead": 60}], "v": 2}
            outbox.append_own(device.store, secrets.vault_mailbox, secrets.writer, body)
    newer.run("sync")
    monkeypatch.setattr(snapshot, "SNAPSHOT_AFTER", 1)
    assert older.json("sync")["snapshot_entries"] == 0  # due by size, but not allowed
    refused = older.run("compact", code=1)
    assert "A newer version of carnet wrote to this vault" in refused.output
    entries = vault_entries(relay, newer)
    assert entries[0][0] == 1  # nothing compacted


def test_a_reader_waits_for_a_snapshots_state_and_says_when_it_is_withheld(
    relay: RelayProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    laptop = init(tmp_path / "laptop", relay.url, "Ana")
    history(laptop, 3, "L")
    laptop.run("compact")
    opening, writer, _ = vault_entries(relay, laptop)[0]
    db = sqlite3.connect(next(relay.data_dir.glob("*.sqlite3")), isolation_level=None)
    db.execute("DELETE FROM entries WHERE writer = ? AND cursor > ?", (writer, opening))
    db.close()  # the relay serves the opening, not the state after it
    tablet = join(tmp_path / "tablet", laptop, relay.url, "tablet")
    assert records(tablet) == [] and not alerts(tablet)
    assert vault_position(tablet)[0] < opening  # nothing vouched for adopted
    monkeypatch.setattr(overdue, "WAIT", 0)
    for _ in range(2):
        tablet.run("sync")
    said = [a for a in alerts(tablet) if "snapshot's contents have been missing" in a["message"]]
    assert len(said) == 1 and records(tablet) == []


def test_a_reader_finishes_a_snapshot_whose_state_arrives_later(
    relay: RelayProcess, tmp_path: Path
) -> None:
    laptop, phone = laptop_and_phone(tmp_path, relay.url)
    history(laptop, 3, "L")
    phone.run("sync")

    async def push_the_opening_only(store: Store, client: RelayClient, keys: MailboxKeys) -> None:
        first = outbox.unpushed(store, keys, 1)
        await client.append(keys, first)
        outbox.mark_pushed(store, keys, first[-1].seq)

    before = vault_position(phone)[0]
    assert asyncio.run(snapshot_by_hand(laptop, push_the_opening_only)) == 0
    phone.run("sync")  # the opening alone: the phone stops before it
    assert vault_position(phone)[0] == before
    assert laptop.json("sync")["compacted"] > 0  # the rest of the state, then compaction
    phone.run("sync")
    tablet = join(tmp_path / "tablet", laptop, relay.url, "tablet")
    assert records(tablet) == records(phone) == records(laptop)
    assert not alerts(phone) and not alerts(tablet)


def test_a_pending_compaction_in_an_unknown_form_only_delays_it(
    relay: RelayProcess, tmp_path: Path
) -> None:
    laptop = init(tmp_path / "laptop", relay.url, "Ana")
    history(laptop, 2, "L")
    with laptop.device() as device:
        keys = device.unlock().vault_mailbox
        with device.store.transaction():  # as an earlier version wrote it
            device.store.set_meta(f"snapshot_pending:{keys.hex_id}", "1,0")
    assert laptop.json("sync")["compacted"] == 0
    assert laptop.json("compact")["compacted"] > 0
