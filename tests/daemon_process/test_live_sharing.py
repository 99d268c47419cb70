"""A practitioner's carnetd receives a share and its new records without any `carnet sync`."""

from __future__ import annotations

from pathlib import Path

from tests.daemon_process.conftest import StartDaemon
from tests.daemon_process.harness import wait_until
from tests.sharing.conftest import Person, add, pinned_pair
from tests.support.relay_process import RelayProcess


def shared_records(doctor: Person) -> list[dict]:
    return [r for r in doctor.json("list") if r.get("patient") == "ana"]


def test_share_and_new_records_reach_a_running_practitioner_daemon(
    tmp_path: Path, relay: RelayProcess, daemon: StartDaemon
) -> None:
    patient, doctor = pinned_pair(tmp_path, relay.url)
    daemon(doctor.home)
    add(patient, "cardiology", "2027-01-10T09:00+01:00")
    patient.run("share", "martin", "--specialty", "cardiology")
    patient.run("sync")
    wait_until(lambda: len(shared_records(doctor)) == 1, 10, "the share to arrive")
    add(patient, "cardiology", "2027-02-10T09:00+01:00")
    add(patient, "dermatology", "2027-02-11T09:00+01:00", "Dr Other")
    patient.run("sync")
    rows = wait_until(
        lambda: len(shared_records(doctor)) == 2 and shared_records(doctor),
        10,
        "the new in-scope record to arrive",
    )
    assert {r["specialty"] for r in rows} == {"cardiology"}
