"""A practitioner's carnetd receives a share and its new records without any `carnet sync`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.daemon_process.conftest import StartDaemon
from tests.daemon_process.harness import carnet, wait_until
from tests.support.relay_process import RelayProcess


def card(home: Path) -> str:
    return str(json.loads(carnet(home, "contact", "--json").stdout)["card"])


def shared_records(home: Path) -> list[dict]:
    listed = json.loads(carnet(home, "list", "--json").stdout)
    return [r for r in listed if r.get("patient") == "ana"]


def test_share_and_new_records_reach_a_running_practitioner_daemon(
    tmp_path: Path, relay: RelayProcess, daemon: StartDaemon
) -> None:
    patient, doctor = tmp_path / "patient", tmp_path / "doctor"
    carnet(patient, "init", "--relay", relay.url, "--no-passphrase", "--name", "Ana")
    carnet(
        doctor,
        "init",
        "--relay",
        relay.url,
        "--no-passphrase",
        "--practitioner",
        "--name",
        "Dr Jeanne Martin",
    )
    carnet(patient, "contact", "add", card(doctor), "--name", "martin")
    carnet(doctor, "contact", "add", card(patient), "--name", "ana")
    carnet(doctor, "sync")  # registers the introduction mailbox
    daemon(doctor)
    carnet(
        patient,
        "add",
        "--practitioner",
        "Dr Martin",
        "--specialty",
        "cardiology",
        "--start",
        "2027-01-10T09:00+01:00",
    )
    carnet(patient, "share", "martin", "--specialty", "cardiology")
    carnet(patient, "sync")
    wait_until(lambda: len(shared_records(doctor)) == 1, 10, "the share to arrive")
    carnet(
        patient,
        "add",
        "--practitioner",
        "Dr Martin",
        "--specialty",
        "cardiology",
        "--start",
        "2027-02-10T09:00+01:00",
    )
    carnet(
        patient,
        "add",
        "--practitioner",
        "Dr Other",
        "--specialty",
        "dermatology",
        "--start",
        "2027-02-11T09:00+01:00",
    )
    carnet(patient, "sync")
    rows = wait_until(
        lambda: len(shared_records(doctor)) == 2 and shared_records(doctor),
        10,
        "the new in-scope record to arrive",
    )
    assert {r["specialty"] for r in rows} == {"cardiology"}
