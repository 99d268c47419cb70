"""Pinned keys: a contact whose keys change is refused loudly until accepted explicitly."""

from __future__ import annotations

from pathlib import Path

from carnet.daemon.paths import Paths
from tests.support.relay_process import RelayProcess, start_relay

from .conftest import Person, init, relay_mailboxes


def kinds(person: Person) -> list[str]:
    return [event["kind"] for event in person.json("log")["events"]]


def test_a_card_with_other_keys_is_refused_until_accepted(
    tmp_path: Path, relay: RelayProcess
) -> None:
    patient = init(tmp_path / "patient", relay.url, "Pat Ient")
    real = init(tmp_path / "doctor", relay.url, "Dr Same", "--practitioner").json("contact")
    fake = init(tmp_path / "impostor", relay.url, "Dr Same", "--practitioner").json("contact")
    patient.run("contact", "add", real["card"], "--name", "doc")
    patient.run("contact", "add", real["card"], "--name", "doc")  # the same keys: a no-op
    refused = patient.run("contact", "add", fake["card"], "--name", "doc", code=1)
    assert refused.stderr.startswith("carnet: REFUSED: a contact's keys changed")
    assert "carnet contact accept doc --card CARD" in refused.stderr
    look_alike = patient.run("contact", "add", fake["card"], "--name", "doc2", code=1)
    assert "REFUSED" in look_alike.stderr and "'Dr Same'" in look_alike.stderr
    assert [c["fingerprint"] for c in patient.json("contact", "list")] == [real["fingerprint"]]
    assert kinds(patient).count("key change") == 2
    patient.run("contact", "accept", "doc", "--card", fake["card"])
    assert [c["fingerprint"] for c in patient.json("contact", "list")] == [fake["fingerprint"]]
    assert kinds(patient).count("key change") == 3
    altered = real["card"][:-6] + ("A" if real["card"][-6] != "A" else "B") + real["card"][-5:]
    broken = patient.run("contact", "add", altered, "--name", "other", code=2)
    assert "not a valid carnet contact card" in broken.stderr


def test_an_invitation_under_other_keys_is_refused(tmp_path: Path, relay: RelayProcess) -> None:
    doctor = init(tmp_path / "doctor", relay.url, "Dr Who", "--practitioner")
    patient = init(tmp_path / "patient", relay.url, "Pat Same")
    impostor = init(tmp_path / "impostor", relay.url, "Pat Same")
    doctor.run("contact", "add", patient.card(), "--name", "pat")
    for person in (patient, impostor):
        person.run("contact", "add", doctor.card(), "--name", "doc")
        person.run("add", "--practitioner", "Dr Who", "--start", "2025-03-01T10:00+01:00")
    impostor.run("share", "doc", "--all")
    refused = doctor.run("sync", code=1)
    assert "an invitation in the name of pat under other keys" in refused.stderr
    assert doctor.json("patients") == []
    assert {"key change", "refused entry"} <= set(kinds(doctor))
    patient.run("share", "doc", "--all")
    doctor.run("sync")
    assert [p["alias"] for p in doctor.json("patients")] == ["pat"]
    # Shares go to practitioners only.
    patient.run("contact", "add", impostor.card(), "--name", "twin")
    assert "is not a practitioner" in patient.run("share", "twin", "--all", code=2).stderr


def test_revoke_erases_the_share_on_the_relay_it_was_made_on(
    tmp_path: Path, relay: RelayProcess
) -> None:
    doctor = init(tmp_path / "doctor", relay.url, "Dr Far", "--practitioner")
    patient = init(tmp_path / "patient", relay.url, "Pat Moved")
    patient.run("contact", "add", doctor.card(), "--name", "doc")
    patient.run("add", "--practitioner", "Dr Far", "--start", "2025-03-01T10:00+01:00")
    patient.run("sync")
    before = relay_mailboxes(relay)
    patient.run("share", "doc", "--all")
    made = relay_mailboxes(relay) - before
    assert len(made) == 1  # the share's data mailbox
    with start_relay(tmp_path / "other-relay") as other:
        config = Paths.resolve(patient.home).config_file
        config.write_text(config.read_text().replace(relay.url, other.url))
        patient.run("revoke", "doc")  # home is now the other relay
    assert not made & relay_mailboxes(relay)
