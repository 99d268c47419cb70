"""Doctolib /account/appointments.json import."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from carnet.daemon.formats import ParsedFile, parse_file

ACCESS = (
    'Floor 1\nIntercom: "Cabinet Médical" à gauche dans le hall\n'
    "Door code: A12345\nAu-dessus de la boulangerie."
)


def capture(corpus: Path) -> dict[str, Any]:
    return json.loads((corpus / "doctolib" / "account-appointments.json").read_text())


def test_capture_imports(corpus: Path) -> None:
    parsed = parse_file(corpus / "doctolib" / "account-appointments.json")
    assert parsed.format == "doctolib"
    upcoming, *done = parsed.records
    assert upcoming == {
        "practitioner": "Dr Pierre Paul",
        "practitioner_id": "",
        "start": "2021-07-10T11:40:00+02:00",
        "end": "2021-07-10T12:00:00+02:00",
        "status": "booked",
        "specialty": "Dermatologue et vénérologue",
        "location": "12 Rue de Châteaudun, 75009 Paris",
        "reason": "",
        "notes": "",
        "patient_instruction": ACCESS,
        "source": "doctolib:2393464-"
        + "foobar" * 16
        + "=--fa9387e2592cf242c4851e3b31b7f41eb211606f",
    }
    assert [(r["start"], r["status"]) for r in done] == [
        ("2021-04-17T12:20:00+02:00", "fulfilled"),
        ("2021-02-15T15:40:00+02:00", "fulfilled"),
    ]


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"canceled": True}, "cancelled"),
        ({"no_show": True, "past": True}, "noshow"),
        ({"confirmed": False}, "pending"),
        ({}, "booked"),
    ],
)
def test_status_flags(
    changes: dict[str, Any], status: str, corpus: Path, parse: Callable[..., ParsedFile]
) -> None:
    document = capture(corpus)
    document["data"]["done"] = []
    document["data"]["confirmed"][0].update(changes)
    assert parse(json.dumps(document)).records[0]["status"] == status


def test_rpps_motive_and_structured_fields(corpus: Path, parse: Callable[..., ParsedFile]) -> None:
    document = capture(corpus)
    entry = copy.deepcopy(document["data"]["confirmed"][0])
    entry["profile"]["RPPS"] = 10003456789  # Doctolib sends it as a number
    entry["profile"]["speciality"] = {"id": 6, "name": "Dermatologue"}
    entry["visit_motive"] = {"id": 1, "name": "Première consultation"}
    entry["practice"]["formal_name"] = "Cabinet Châteaudun"
    entry["substitution_wording"] = "Remplacé par le Dr Marie Curie"
    document["data"] = {"confirmed": [entry]}
    (record,) = parse(json.dumps(document)).records
    assert record["practitioner_id"] == "10003456789"
    assert record["specialty"] == "Dermatologue"
    assert record["reason"] == "Première consultation"
    assert record["location"] == "Cabinet Châteaudun, 12 Rue de Châteaudun, 75009 Paris"
    assert record["notes"] == "Remplacé par le Dr Marie Curie"
