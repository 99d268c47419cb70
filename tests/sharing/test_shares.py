"""Issue 4: a patient (two devices) shares with a practitioner through the real relay.

The tests of this module share one world and run in order: the share made
first is followed, noted, narrowed and revoked by the later tests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from carnet.daemon.keys import Secrets
from carnet.daemon.sharing import cards, contacts, incoming, shares
from carnet.daemon.sync import outbox
from carnet.daemon.sync.relay_client import RelayClient
from carnet.daemon.sync.transfer import push
from carnet.protocol.envelope import GENESIS, Entry, Writer, open_entry, seal
from carnet.protocol.mailbox import MailboxKeys
from tests.support.relay_process import RelayProcess

from .conftest import Person, add, init, join, opens, relay_mailboxes, relay_rows

SHARED = "MRKscopecardio"
SPECIALTIES = (SHARED, "dermatology", "ophthalmology", "neurology", "rheumatology")
PATIENT, DOCTOR = "MRKpatient Alice", "Dr MRKdoctor Martin"
DOC_ALIAS, PATIENT_ALIAS = "MRKaliasdoc", "MRKaliaspat"
COPIES_STAY = "Copies the doctor already downloaded stay with the doctor."


class World:
    def __init__(self, a: Person, b: Person, doctor: Person, relay: RelayProcess) -> None:
        self.a, self.b, self.doctor, self.relay = a, b, doctor, relay
        self.fingerprints: list[str] = []
        self.share_id = ""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, relay: RelayProcess) -> Iterator[World]:
    root = tmp_path_factory.mktemp("people")
    a = init(root / "a", relay.url, PATIENT, "--device-name", "laptop")
    b = join(root / "b", a, relay.url, "phone")
    doctor = init(root / "doctor", relay.url, DOCTOR, "--practitioner")
    world = World(a, b, doctor, relay)
    for person, card, alias in ((a, doctor.card(), DOC_ALIAS), (doctor, a.card(), PATIENT_ALIAS)):
        pinned = person.run("contact", "add", card, "--name", alias).stdout
        world.fingerprints.append(pinned.rsplit("fingerprint ", 1)[1].strip())
    with a.device() as device:
        for i in range(200):
            device.store.add(
                {
                    "practitioner": f"Dr {i % 7}",
                    "start": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T09:00:00+01:00",
                    "specialty": SPECIALTIES[i % 5],
                    "location": "Hôpital Lariboisière",
                    "reason": f"visit {i}",
                    "notes": "à jeun" if i % 2 else "",
                }
            )
    a.run("sync")
    b.run("sync")
    yield world


def in_scope(person: Person, specialty: str = SHARED) -> list[dict[str, Any]]:
    return [r for r in person.json("list") if r["specialty"] == specialty]


def shared_with_doctor(world: World) -> list[dict[str, Any]]:
    rows = world.doctor.json("list", "--patient", PATIENT_ALIAS)
    assert all(row.pop("patient") == PATIENT_ALIAS for row in rows)
    return rows


def doctor_keys(world: World) -> tuple[list[bytes], dict[str, set[bytes]]]:
    """Every entry key the practitioner holds, and the mailbox ids by purpose."""
    with world.doctor.device() as device:
        secrets = device.unlock()
        own = {secrets.vault_mailbox.mailbox_id, cards.intro_mailbox(secrets).mailbox_id}
        held: list[MailboxKeys] = [secrets.vault_mailbox, cards.intro_mailbox(secrets)]
        shared: set[bytes] = set()
        for share in incoming.all_incoming(device.store):
            invitation = share.invitation(secrets)
            for keys in (invitation.data, invitation.notes):
                if keys is not None:
                    held.append(keys)
                    shared.add(keys.mailbox_id)
        held += [c.card.intro for c in contacts.all_contacts(device.store)]
    return [k.entry_key for k in held], {"own": own, "shared": shared}


def readable_mailboxes(world: World, keys: list[bytes]) -> set[bytes]:
    return {bytes(row[0]) for row in relay_rows(world.relay) if any(opens(row, k) for k in keys)}


def test_doctor_sees_exactly_the_shared_specialty(world: World) -> None:
    made = world.a.json(
        "share", DOC_ALIAS, "--specialty", SHARED, "--allow-notes", "--expires", "1h"
    )
    world.share_id = made["id"]
    expected = in_scope(world.a)
    assert made["records"] == len(expected) == 40
    report = world.doctor.json("sync")
    assert report["invitations_received"] == 1
    assert shared_with_doctor(world) == expected  # field for field, same order
    assert world.doctor.json("list", "--patient", PATIENT_ALIAS)[0]["patient"] == PATIENT_ALIAS
    (patient,) = world.doctor.json("patients")
    assert patient == {
        "alias": PATIENT_ALIAS,
        "name": PATIENT,
        "shares": 1,
        "active": 1,
        "records": 40,
    }
    exported = world.doctor.run("export", "--patient", PATIENT_ALIAS, "--format", "ics").stdout
    assert exported.count("BEGIN:VEVENT") == 40
    bundle = json.loads(
        world.doctor.run("export", "--patient", PATIENT_ALIAS, "--format", "fhir").stdout
    )
    assert len(bundle["entry"]) == 40
    own = world.doctor.json("list")
    assert len(own) == 40 and {r["patient"] for r in own} == {PATIENT_ALIAS}


def test_doctor_keys_open_nothing_else_on_the_relay(world: World) -> None:
    keys, mailboxes = doctor_keys(world)
    readable = readable_mailboxes(world, keys)
    assert readable <= mailboxes["own"] | mailboxes["shared"]
    assert readable & mailboxes["shared"]  # and it does read the share
    assert len({bytes(row[0]) for row in relay_rows(world.relay)} - readable) >= 1  # the vault
    # What the share's data mailbox holds names only in-scope records.
    with world.doctor.device() as device:
        (share,) = incoming.all_incoming(device.store)
        data = share.invitation(device.unlock()).data
    assert data.write_seed is None  # the doctor can read the share, never write it
    ids = set()
    for mailbox, writer, seq, raw in relay_rows(world.relay):
        if bytes(mailbox) == data.mailbox_id:
            body = open_entry(data, Entry(bytes(writer), seq, bytes(raw)), lambda d, c: True).body
            ids |= {op["id"] for op in body["ops"]}
    assert ids == {r["id"] for r in in_scope(world.a)}


def test_second_device_records_follow_the_scope(world: World) -> None:
    inside = add(world.b, SHARED, "2024-12-20T10:00+01:00", "Dr New")
    outside = add(world.b, "dermatology", "2024-12-21T10:00+01:00", "Dr New")
    assert world.b.json("sync")["shared_entries_pushed"] == 1
    world.doctor.run("sync")
    ids = {r["id"] for r in shared_with_doctor(world)}
    assert inside in ids and outside not in ids and len(ids) == 41
    world.a.run("sync")
    assert shared_with_doctor(world) == in_scope(world.a)


def test_note_reaches_every_patient_device_with_its_author(world: World) -> None:
    record = shared_with_doctor(world)[0]["id"]
    world.doctor.run("note", record, "Visit summary: MRKnote all fine")
    for device in (world.a, world.b):
        assert device.json("sync")["notes_received"] == 1
        (note,) = device.json("show", record)["practitioner_notes"]
        assert note["author"] == DOCTOR and note["contact"] == DOC_ALIAS
        assert note["text"] == "Visit summary: MRKnote all fine"
    assert world.a.json("show", record)["notes"] == world.b.json("show", record)["notes"]


def _forge(world: World, record: str) -> None:
    """A note written by the patient's own device, and one by another practitioner."""
    body = {"note": {"record": record, "text": "MRKforged", "at": "2024-01-01T00:00:00+00:00"}}
    with world.a.device() as device:
        secrets = device.unlock()
        keys = shares.load(device.store, world.share_id).secrets(secrets).notes_keys
        assert keys is not None
        with device.store.transaction():
            outbox.append_own(device.store, keys, secrets.writer, body)
        stranger = seal(keys, Secrets.generate().writer, 1, GENESIS, body)
        # A certificate of the wrong length is a refusal too, never a crashed round.
        malformed = seal(keys, Writer(SigningKey.generate(), b"\x01" * 63), 1, GENESIS, body)

        async def send() -> None:
            async with RelayClient(world.relay.url) as client:
                await push(device.store, client, keys, create=None)
                await client.append(keys, [stranger])
                await client.append(keys, [malformed])

        asyncio.run(send())
        # A "note" operation in the vault is no note: it is skipped as an unknown kind.
        with device.store.transaction():
            device.store.enqueue({"t": "note", "record": record, "text": "MRKforged"})


def test_forged_notes_are_refused(world: World) -> None:
    record = shared_with_doctor(world)[0]["id"]
    _forge(world, record)
    for device in (world.a, world.b):
        refused = device.run("sync", code=1)
        assert "forged" in refused.stderr and refused.stderr.count("\n") == 1
        assert [n["text"] for n in device.json("show", record)["practitioner_notes"]] == [
            "Visit summary: MRKnote all fine"
        ]
        events = device.json("log")["events"]
        assert sum(e["kind"] == "refused entry" for e in events) == 3
        device.run("sync")  # refused once, skipped for good
    assert "MRKforged" not in world.b.run("show", record).stdout


def test_narrowing_takes_records_out(world: World) -> None:
    world.a.run("narrow", DOC_ALIAS, "--since", "2024-07-01")
    world.doctor.run("sync")
    expected = [r for r in in_scope(world.a) if r["start"] >= "2024-07-01"]
    assert 0 < len(expected) < 41
    assert shared_with_doctor(world) == expected
    assert world.a.json("shares")[0]["records"] == len(expected)


def test_revoke_erases_and_nothing_new_is_readable(world: World) -> None:
    keys, mailboxes = doctor_keys(world)
    kept = shared_with_doctor(world)
    revoked = world.a.run("revoke", DOC_ALIAS)
    assert COPIES_STAY in revoked.stdout
    assert not mailboxes["shared"] & relay_mailboxes(world.relay)  # no rows left
    add(world.b, SHARED, "2024-12-24T10:00+01:00", "Dr Late")
    world.b.run("sync")
    assert readable_mailboxes(world, keys) <= mailboxes["own"]
    world.doctor.run("sync")
    assert shared_with_doctor(world) == kept  # the copies stay with the doctor
    assert world.doctor.json("patients")[0]["active"] == 0
    assert world.a.json("shares")[0]["state"] == "revoked"


def test_expired_share_behaves_like_a_revoked_one(world: World) -> None:
    made = world.a.json("share", DOC_ALIAS, "--specialty", "dermatology", "--expires", "6s")
    world.doctor.run("sync")
    keys, mailboxes = doctor_keys(world)
    assert len([r for r in world.doctor.json("list") if r["specialty"] == "dermatology"]) == 41
    time.sleep(
        max(0.0, datetime.fromisoformat(made["expires"]).timestamp() - time.time()) + 2.5
    )  # expiry, then a sweep
    assert not mailboxes["shared"] & relay_mailboxes(world.relay)
    add(world.b, "dermatology", "2024-12-26T10:00+01:00", "Dr Later")
    for device in (world.b, world.a, world.a):
        device.run("sync")
    assert readable_mailboxes(world, keys) <= mailboxes["own"]
    events = world.a.json("log")["events"]
    assert sum(e["kind"] == "share expired" for e in events) == 1
    assert {s["state"] for s in world.a.json("shares")} == {"revoked", "expired"}


def test_audit_log_lists_events_and_detects_tampering(world: World) -> None:
    log = world.a.json("log")
    assert log["chain_intact"] is True
    kinds = {e["kind"] for e in log["events"]}
    assert kinds >= {
        "device added",
        "contact pinned",
        "share made",
        "note received",
        "refused entry",
        "share narrowed",
        "share revoked",
        "share expired",
    }
    on_b = {e["id"] for e in world.b.json("log")["events"]}
    assert {e["id"] for e in log["events"] if e["kind"] == "share made"} <= on_b
    with world.a.device() as device, device.store.transaction():
        device.store.conn.execute("UPDATE audit SET detail = 'nothing happened' WHERE seq = 3")
    broken = world.a.run("log", code=1)
    assert "hash chain is broken (altered outside carnet): event 3 does not" in broken.stderr


def test_relay_holds_no_name_alias_fingerprint_or_scope(world: World) -> None:
    world.relay.stop()
    markers = [PATIENT, DOCTOR, DOC_ALIAS, PATIENT_ALIAS, SHARED, "MRKnote", "laptop", "phone"]
    for fingerprint in world.fingerprints:
        markers += [fingerprint, fingerprint.replace(" ", "")]
    haystack = b"".join(p.read_bytes() for p in world.relay.data_dir.rglob("*") if p.is_file())
    haystack += Path(world.relay.log_path).read_bytes()
    for marker in markers:
        raw = marker.encode()
        for form in (raw, raw.hex().encode(), base64.b64encode(raw)[:-2], raw.upper()):
            assert form not in haystack, marker
