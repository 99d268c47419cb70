"""Nothing is lost when the relay loses a mailbox (erased, or restored from an old backup)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from carnet.daemon.sync import overdue
from tests.sharing import conftest as sharing
from tests.support.relay_process import RelayProcess
from tests.sync.test_compaction import alerts, history, laptop_and_phone, records

from .conftest import Device


def backup(relay: RelayProcess, to: Path) -> None:
    relay.stop()
    shutil.copytree(relay.data_dir, to)
    relay.restart()


def restore(relay: RelayProcess, backup: Path) -> None:
    relay.stop()
    shutil.rmtree(relay.data_dir)
    shutil.copytree(backup, relay.data_dir)
    relay.restart()


def add(device: Device, practitioner: str, day: int) -> str:
    start = f"2027-06-{day:02d}T10:00Z"
    return device.run("add", "--practitioner", practitioner, "--start", start).stdout.strip()


def test_devices_resend_everything_and_converge_after_relay_data_loss(
    pair: tuple[Device, Device], relay: RelayProcess, tmp_path
) -> None:
    a, b = pair
    for day in range(1, 4):
        add(a, f"Dr A{day}", day)
        add(b, f"Dr B{day}", day)
    for device in (a, b, a):
        device.run("sync")
    assert len(a.records()) == len(b.records()) == 6
    relay.stop()
    shutil.rmtree(relay.data_dir)  # every mailbox and entry gone
    relay.restart()
    add(a, "Dr A after", 10)
    add(b, "Dr B after", 11)
    for device in (a, b, a, b):
        result = device.run("sync")  # each notices and sends its whole feed again
        assert result.returncode == 0
    assert a.records() == b.records()
    assert len(a.records()) == 8
    # A third device joining now finds every writer's chain complete from entry 1.
    c = Device(tmp_path / "c")
    code = a.run("device", "invite").stdout.strip().splitlines()[-1]
    c.run("init", "--relay", relay.url, "--join", code, "--no-passphrase")
    assert c.records() == a.records()
    alerts = json.loads(a.run("status", "--json").stdout)["alerts"]
    assert any("the relay had lost entries of a mailbox" in alert["message"] for alert in alerts)


def test_invitations_still_arrive_after_the_relay_lost_the_introduction_mailbox(
    relay: RelayProcess, tmp_path: Path
) -> None:
    patient, doctor = sharing.pinned_pair(tmp_path, relay.url)
    sharing.add(patient, "cardiology", "2027-01-10T09:00+01:00")
    patient.run("share", "martin", "--specialty", "cardiology")
    patient.run("sync")
    doctor.run("sync")
    assert len(doctor.json("patients")) == 1
    relay.stop()
    shutil.rmtree(relay.data_dir)
    relay.restart()
    doctor.run("sync")  # recreates its introduction mailbox, reads it from the start
    patient.run("sync")  # the first share's mailbox is gone: an alert, never recreated
    sharing.add(patient, "dermatology", "2027-02-10T09:00+01:00")
    patient.run("share", "martin", "--specialty", "dermatology")
    patient.run("sync")  # resends its whole feed to the introduction mailbox
    doctor.run("sync")
    specialties = {r["specialty"] for r in doctor.json("list") if r.get("patient") == "ana"}
    assert "dermatology" in specialties


def test_a_device_that_only_reads_converges_after_the_relay_is_restored_from_a_backup(
    pair: tuple[Device, Device], relay: RelayProcess, tmp_path: Path
) -> None:
    """The reader's cursor is past everything the restored relay holds; the writers
    then send their feeds again, in another order than the reader first saw them."""
    a, reader = pair
    c = Device(tmp_path / "c")
    code = a.run("device", "invite").stdout.strip().splitlines()[-1]
    c.run("init", "--relay", relay.url, "--join", code, "--no-passphrase")
    add(a, "Dr Before", 1)
    for device in (a, c, reader):
        device.run("sync")
    backup(relay, tmp_path / "backup")
    for day in range(2, 6):  # the two writers' entries interleave
        add(a, f"Dr A{day}", day)
        a.run("sync")
        add(c, f"Dr C{day}", day)
        c.run("sync")
    reader.run("sync")
    restore(relay, tmp_path / "backup")  # last night's backup
    # A finds the relay behind when it pushes; C, with nothing to push, when it
    # reads A's entries again under cursors it had passed: each then sends its
    # feed again, and reads the mailbox from its start.
    for device in (a, c, a, reader):
        result = device.run("sync", check=False)
        assert result.returncode == 0, result.stderr
    assert reader.records() == a.records() == c.records() and len(reader.records()) == 9
    told = {}
    for name, device in (("reader", reader), ("c", c)):  # told of the loss, of no attack
        alerts = json.loads(device.run("status", "--json").stdout)["alerts"]
        assert all("the relay had lost entries of a mailbox" in a["message"] for a in alerts)
        told[name] = bool(alerts)
    assert told["c"]


def test_entries_given_cursors_a_device_had_read_past_are_not_skipped(
    relay: RelayProcess, tmp_path: Path
) -> None:
    """After a restore, the tablet's new entry gets the cursor the phone's lost
    entry had, which the laptop had read: the laptop sees the entry there changed."""
    laptop, phone = laptop_and_phone(tmp_path, relay.url)
    tablet = sharing.join(tmp_path / "tablet", laptop, relay.url, "tablet")
    for person in (laptop, phone, tablet, laptop, phone):
        person.run("sync")
    backup(relay, tmp_path / "backup")
    sharing.add(phone, "cardiology", "2027-03-01T09:00+01:00", "Dr Phone")
    for person in (phone, laptop, tablet):
        person.run("sync")
    restore(relay, tmp_path / "backup")  # the phone's entry is lost on the relay
    sharing.add(tablet, "dermatology", "2027-03-02T09:00+01:00", "Dr Tablet")
    tablet.run("sync")  # one entry, under the cursor the phone's entry had
    laptop.run("sync")
    laptop.run("compact")  # nothing it has not applied may be compacted away
    sharing.add(tablet, "neurology", "2027-03-03T09:00+01:00", "Dr Tablet 2")
    for person in (tablet, phone, laptop):  # the phone notices too, and sends again
        person.run("sync")
    expected = {"Dr Phone", "Dr Tablet", "Dr Tablet 2"}
    assert expected <= {r["practitioner"] for r in records(laptop)}
    assert records(laptop) == records(phone)


def test_a_device_that_compacted_reads_its_vault_again_after_a_restore(
    relay: RelayProcess, tmp_path: Path
) -> None:
    """It skips its own snapshot's opening, as all its own entries, yet continues
    the other writers' chains from what that opening vouched for."""
    laptop, phone = laptop_and_phone(tmp_path, relay.url)
    history(laptop, 3, "L")
    history(phone, 2, "P")
    laptop.run("sync")
    assert laptop.json("compact")["compacted"] > 0
    sharing.add(phone, "dermatology", "2027-04-01T10:00+02:00", "Dr After snapshot")
    phone.run("sync")
    laptop.run("sync")
    backup(relay, tmp_path / "backup")  # last night's backup, after the compaction
    sharing.add(phone, "neurology", "2027-04-02T10:00+02:00", "Dr Lost")
    phone.run("sync")
    laptop.run("sync")
    restore(relay, tmp_path / "backup")
    laptop.run("sync")  # past the relay's end: reads again from the start
    phone.run("sync")
    laptop.run("sync")
    assert records(laptop) == records(phone)
    assert all("the relay had lost entries" in a["message"] for a in alerts(laptop))


@pytest.mark.parametrize("reads_before_the_patient_notices", [False, True])
def test_a_practitioner_gets_no_false_alarm_after_a_restore(
    relay: RelayProcess, tmp_path: Path, reads_before_the_patient_notices: bool
) -> None:
    patient, doctor = sharing.pinned_pair(tmp_path, relay.url)
    sharing.add(patient, "cardiology", "2027-01-10T09:00+01:00", "Dr One")
    patient.run("share", "martin", "--specialty", "cardiology")
    patient.run("sync")
    doctor.run("sync")
    backup(relay, tmp_path / "backup")
    sharing.add(patient, "cardiology", "2027-01-11T09:00+01:00", "Dr Two")
    patient.run("sync")
    doctor.run("sync")
    restore(relay, tmp_path / "backup")
    if reads_before_the_patient_notices:
        doctor.run("sync")
    sharing.add(patient, "cardiology", "2027-01-12T09:00+01:00", "Dr Three")
    patient.run("sync")  # notices the loss: sends its vault and share feeds again
    doctor.run("sync")
    shown = {r["practitioner"] for r in doctor.json("list") if r.get("patient") == "ana"}
    assert {"Dr One", "Dr Two", "Dr Three"} <= shown
    assert alerts(doctor) == []


def shown_to(doctor: sharing.Person, patient: str = "ana") -> set[str]:
    return {r["practitioner"] for r in doctor.json("list") if r.get("patient") == patient}


def test_a_practitioner_takes_what_two_patient_devices_send_again_after_a_restore(
    relay: RelayProcess, tmp_path: Path
) -> None:
    """The phone's entries sent again get cursors the practitioner had passed."""
    laptop, doctor = sharing.pinned_pair(tmp_path, relay.url)
    phone = sharing.join(tmp_path / "phone", laptop, relay.url, "phone")
    sharing.add(laptop, "cardiology", "2027-01-10T09:00+01:00", "Dr One")
    laptop.run("share", "martin", "--specialty", "cardiology")
    for person in (laptop, phone, laptop, phone, doctor):
        person.run("sync")
    backup(relay, tmp_path / "backup")
    sharing.add(laptop, "cardiology", "2027-01-11T09:00+01:00", "Dr L1")
    laptop.run("sync")
    phone.run("sync")
    sharing.add(phone, "cardiology", "2027-01-12T09:00+01:00", "Dr P1")
    for person in (phone, laptop, doctor):
        person.run("sync")
    restore(relay, tmp_path / "backup")
    for day, name in ((13, "Dr P2"), (14, "Dr P3")):
        sharing.add(phone, "cardiology", f"2027-01-{day}T09:00+01:00", name)
        phone.run("sync")
        doctor.run("sync")
    assert {"Dr One", "Dr L1", "Dr P1", "Dr P2", "Dr P3"} <= shown_to(doctor)
    assert alerts(doctor) == []


def test_an_invitation_under_a_reused_cursor_still_arrives(
    relay: RelayProcess, tmp_path: Path
) -> None:
    ana, doctor = sharing.pinned_pair(tmp_path, relay.url)
    bea = sharing.init(tmp_path / "bea", relay.url, "Bea")
    bea.run("contact", "add", doctor.card(), "--name", "martin")
    doctor.run("contact", "add", bea.card(), "--name", "bea")
    sharing.add(ana, "cardiology", "2027-01-10T09:00+01:00", "Dr Ana1")
    sharing.add(bea, "cardiology", "2027-01-10T09:00+01:00", "Dr Bea1")
    ana.run("share", "martin", "--specialty", "cardiology")
    ana.run("sync")
    doctor.run("sync")
    backup(relay, tmp_path / "backup")
    sharing.add(ana, "dermatology", "2027-01-11T09:00+01:00", "Dr Ana2")
    ana.run("share", "martin", "--specialty", "dermatology")
    ana.run("sync")
    doctor.run("sync")
    restore(relay, tmp_path / "backup")
    bea.run("share", "martin", "--specialty", "cardiology")
    bea.run("sync")  # her first entry there: under the cursor Ana's second had
    doctor.run("sync")
    assert "Dr Bea1" in shown_to(doctor, "bea")


def test_no_alert_for_entries_seen_elsewhere_that_this_device_had_taken_before_a_loss(
    relay: RelayProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(overdue, "WAIT", 0)
    laptop, phone = laptop_and_phone(tmp_path, relay.url)
    tablet = sharing.join(tmp_path / "tablet", laptop, relay.url, "tablet")
    for person in (laptop, phone, tablet, laptop, phone, tablet):
        person.run("sync")
    backup(relay, tmp_path / "backup")
    sharing.add(laptop, "cardiology", "2027-05-01T10:00+02:00", "Dr Lost")
    laptop.run("sync")
    phone.run("sync")
    sharing.add(phone, "dermatology", "2027-05-02T10:00+02:00", "Dr Phone")
    phone.run("sync")  # says it saw the laptop's newest entry
    tablet.run("sync")
    restore(relay, tmp_path / "backup")
    for person in (phone, phone, tablet, tablet, tablet):  # the laptop is away for days
        person.run("sync")
    assert {"Dr Lost", "Dr Phone"} <= {r["practitioner"] for r in records(tablet)}
    assert not [a for a in alerts(tablet) if "entries another device has seen" in a["message"]]
