"""FHIR R4 import (single resources, Bundles, ndjson) and the Bundle export."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle

from carnet.daemon.formats import ParsedFile, export_fhir, parse_file
from carnet.daemon.formats.fhir import CARNET_SOURCE_SYSTEM, ENCOUNTER_STATUS
from carnet.daemon.records import STATUSES

EXAMPLES = ("Appointment-example.json", "Appointment-2docs.json", "Appointment-examplereq.json")
MRI = "Discussion on the results of your recent MRI"
NEXT_STEPS = (
    "Further expand on the results of the MRI and determine the next actions"
    " that may be appropriate."
)


def examples(corpus: Path) -> list[dict[str, Any]]:
    return [r for name in EXAMPLES for r in parse_file(corpus / "fhir-r4-examples" / name).records]


def check_invariants(bundle: dict[str, Any]) -> None:
    """app-2, app-3 and app-4, which fhir.resources does not enforce."""
    for entry in bundle["entry"]:
        appointment = entry["resource"]
        status = appointment["status"]
        if "start" in appointment and "end" in appointment:
            assert time_of(appointment["start"]) <= time_of(appointment["end"]), "app-2"
        else:
            assert status in ("proposed", "cancelled", "waitlist"), "app-3"
        if "cancelationReason" in appointment:
            assert status in ("cancelled", "noshow"), "app-4"


def time_of(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def reimport(bundle: dict[str, Any], tmp_path: Path) -> ParsedFile:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(bundle))
    return parse_file(path)


def test_official_appointment_examples(corpus: Path) -> None:
    example, two_docs, request = examples(corpus)
    assert example == {
        "practitioner": "Dr Adam Careful",
        "practitioner_id": "",
        "start": "2013-12-10T09:00:00+00:00",
        "end": "2013-12-10T11:00:00+00:00",
        "status": "booked",
        "specialty": "General practice",
        "location": "South Wing, second floor",
        "reason": "Severe burn of left ear",
        "notes": f"{MRI}\n\n{NEXT_STEPS}",
        "patient_instruction": "",
        # "2013-10-10" is a date: local midnight in Paris, stored as a UTC instant.
        "created": "2013-10-09T22:00:00+00:00",
        "source": "fhir:Appointment/example",
    }
    assert two_docs["practitioner"] == "Dr Adam Careful, Luigi Maas"  # not the "Phone Call"
    assert two_docs["notes"].startswith("Discussion about Peter Chalmers MRI results\n\n")
    assert two_docs["location"] == ""
    # A proposed walk-in: no start, no practitioner named yet.
    assert request["status"] == "proposed"
    assert request["start"] == "2016-06-02T00:00:00+02:00"  # first requestedPeriod
    assert request["end"] == "2016-06-02T00:15:00+02:00"  # minutesDuration 15
    assert request["practitioner"] == "General practice"  # specialty as the fallback
    assert request["reason"] == "Clinical Review"
    assert request["source"] == "fhir:http://example.org/sampleappointment-identifier|123"


def test_examples_export_validates_and_reimports_identically(corpus: Path, tmp_path: Path) -> None:
    records = examples(corpus)
    bundle = export_fhir(records)
    Bundle.model_validate(bundle)
    for entry in bundle["entry"]:
        Appointment.model_validate(entry["resource"])
    check_invariants(bundle)
    assert bundle["type"] == "collection"
    assert reimport(bundle, tmp_path).records == records

    exported = bundle["entry"][0]["resource"]
    assert exported["identifier"] == [
        {"system": CARNET_SOURCE_SYSTEM, "value": "fhir:Appointment/example"}
    ]
    assert exported["specialty"] == [{"text": "General practice"}]
    assert exported["reasonCode"] == [{"text": "Severe burn of left ear"}]
    assert exported["comment"] == f"{MRI}\n\n{NEXT_STEPS}"
    assert exported["created"] == "2013-10-09T22:00:00+00:00"
    actors = [p["actor"] for p in exported["participant"]]
    assert actors == [
        {"type": "Practitioner", "display": "Dr Adam Careful"},
        {"type": "Location", "display": "South Wing, second floor"},
    ]
    # A source that was a FHIR identifier becomes that identifier again.
    request = bundle["entry"][2]["resource"]
    assert request["identifier"] == [
        {"system": "http://example.org/sampleappointment-identifier", "value": "123"}
    ]


def test_export_is_lossless_for_every_field_and_status(tmp_path: Path) -> None:
    records = [
        {
            "practitioner": "Dr Jeanne Martin",
            "practitioner_id": "urn:oid:1.2.250.1.71.4.2.1|810001234567",
            "start": "2026-03-01T09:30:00+05:30",
            "end": "2026-03-01T10:00:00+05:30",
            "status": status,
            "specialty": "Cardiology",
            "location": "12 rue de la Paix, 75002 Paris",
            "reason": "Palpitations; follow-up",
            "notes": "Bring the ECG.\nSecond line, with a \\ and a | too",
            "patient_instruction": "Fast from 8 pm",
            "source": f"ical:uid-{status}@example.org",
            "created": "2026-01-02T03:04:05+00:00",
            "updated": "2026-01-03T03:04:05+00:00",
        }
        for status in STATUSES
    ]
    bundle = export_fhir(records)
    Bundle.model_validate(bundle)
    check_invariants(bundle)
    assert reimport(bundle, tmp_path).records == records
    identifier = bundle["entry"][0]["resource"]["participant"][0]["actor"]["identifier"]
    assert identifier == {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810001234567"}


def test_record_without_source_exports_under_its_id(tmp_path: Path) -> None:
    record = {"practitioner": "Dr X", "start": "2026-03-01T09:30:00+01:00", "id": "ab" * 16}
    (back,) = reimport(export_fhir([record]), tmp_path).records
    assert back["source"] == f"carnet:{'ab' * 16}"
    assert back["end"] == "2026-03-01T10:00:00+01:00"


def test_synthea_encounters(corpus: Path, tmp_path: Path) -> None:
    path = corpus / "synthea-10-patients" / "Encounter.000.ndjson"
    began = time.perf_counter()
    parsed = parse_file(path)
    elapsed = time.perf_counter() - began
    assert elapsed < 1.0, f"parsing 1,215 encounters took {elapsed:.2f} s"
    assert parsed.format == "fhir" and len(parsed.records) == 1215
    assert {r["status"] for r in parsed.records} == {"fulfilled"}
    first = parsed.records[0]
    assert first == {
        "practitioner": "Dr. Chelsey293 Simonis280",
        "practitioner_id": "http://hl7.org/fhir/sid/us-npi|9999974493",
        "start": "1989-10-04T02:25:16-04:00",
        "end": "1989-10-04T06:20:16-04:00",
        "status": "fulfilled",
        "specialty": "Encounter for problem (procedure)",
        "location": "NEWMAN MEMORIAL COUNTY HOSPITAL",
        "reason": "End-stage renal disease (disorder)",
        "notes": "",
        "patient_instruction": "",
        "source": "fhir:https://github.com/synthetichealth/synthea|00c7f717-4030-5582-2ed8-888ad2bc878e",
    }
    assert sum(1 for r in parsed.records if r["reason"]) == 696
    bundle = export_fhir(parsed.records)
    Bundle.model_validate(bundle)
    assert reimport(bundle, tmp_path).records == parsed.records


def practitioner_bundle(appointment: dict[str, Any]) -> dict[str, Any]:
    resources = [
        {
            "resourceType": "Practitioner",
            "id": "pr1",
            "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810001234567"}],
            "name": [{"prefix": ["Dr"], "given": ["Jeanne"], "family": "Martin"}],
        },
        {
            "resourceType": "PractitionerRole",
            "id": "role1",
            "practitioner": {"reference": "Practitioner/pr1"},
        },
        {"resourceType": "Location", "id": "loc1", "name": "Clinique du Parc"},
        {"resourceType": "Patient", "id": "me"},
        appointment,
    ]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"fullUrl": f"http://example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources
        ],
    }


def test_bundle_references_are_resolved(parse: Callable[..., ParsedFile]) -> None:
    appointment = {
        "resourceType": "Appointment",
        "id": "a1",
        "status": "booked",
        "start": "2026-05-04T14:00:00+02:00",
        "end": "2026-05-04T14:20:00+02:00",
        "serviceType": [{"coding": [{"display": "Cardiology"}]}],
        "contained": [{"resourceType": "Condition", "id": "c", "code": {"text": "Palpitations"}}],
        "reasonReference": [{"reference": "#c"}],
        "patientInstruction": "Bring your last ECG",
        "meta": {"lastUpdated": "2026-04-01T10:00:00+02:00"},
        "participant": [
            {"actor": {"reference": "Patient/me"}, "status": "accepted"},
            {"actor": {"reference": "PractitionerRole/role1"}, "status": "accepted"},
            {"actor": {"reference": "http://example.org/fhir/Location/loc1"}, "status": "accepted"},
        ],
    }
    parsed = parse(json.dumps(practitioner_bundle(appointment)))
    (record,) = parsed.records
    assert record["practitioner"] == "Dr Jeanne Martin"
    assert record["practitioner_id"] == "urn:oid:1.2.250.1.71.4.2.1|810001234567"
    assert record["location"] == "Clinique du Parc"
    assert record["specialty"] == "Cardiology"
    assert record["reason"] == "Palpitations"
    assert record["patient_instruction"] == "Bring your last ECG"
    assert record["updated"] == "2026-04-01T08:00:00+00:00"
    assert parsed.skipped == {"Practitioner": 1, "PractitionerRole": 1, "Location": 1, "Patient": 1}


def test_ndjson_resolves_conditional_references(parse: Callable[..., ParsedFile]) -> None:
    lines = [
        {
            "resourceType": "Practitioner",
            "id": "x",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "42"}],
            "name": [{"text": "Dr Ada Lovelace"}],
        },
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "planned",
            "period": {"start": "2026-05-04T14:00:00Z"},
            "participant": [
                {
                    "individual": {
                        "reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|42"
                    }
                }
            ],
            "serviceProvider": {"display": "Hôpital Nord"},
        },
    ]
    parsed = parse("\n".join(json.dumps(line) for line in lines) + "\n", "bulk.txt")
    (record,) = parsed.records
    assert record["practitioner"] == "Dr Ada Lovelace"
    assert record["practitioner_id"] == "http://hl7.org/fhir/sid/us-npi|42"
    assert record["location"] == "Hôpital Nord"  # no location: the service provider
    assert record["status"] == "booked"
    assert record["end"] == "2026-05-04T14:30:00+00:00"  # carnet's default duration
    assert record["source"] == "fhir:Encounter/e1"


@pytest.mark.parametrize(("code", "status"), sorted(ENCOUNTER_STATUS.items()))
def test_every_encounter_status_maps(
    code: str, status: str, parse: Callable[..., ParsedFile]
) -> None:
    encounter = {
        "resourceType": "Encounter",
        "status": code,
        "period": {"start": "2024-01-02T10:00:00+01:00", "end": "2024-01-02T10:30:00+01:00"},
        "participant": [{"individual": {"display": "Dr House"}}],
    }
    (record,) = parse(json.dumps(encounter)).records
    assert record["status"] == status and status in STATUSES
    assert record["source"].startswith("fhir:content-sha256:")  # no id, no identifier


def test_same_appointment_twice_keeps_the_last(parse: Callable[..., ParsedFile]) -> None:
    def version(note: str) -> dict[str, Any]:
        return {
            "resourceType": "Appointment",
            "identifier": [{"system": "urn:example", "value": "7"}],
            "status": "booked",
            "start": "2026-05-04T14:00:00Z",
            "comment": note,
            "participant": [{"actor": {"display": "Dr X", "type": "Practitioner"}}],
        }

    bundle = {"resourceType": "Bundle", "type": "history", "entry": []}
    bundle["entry"] = [{"resource": version("first")}, {"resource": version("second")}]
    parsed = parse(json.dumps(bundle))
    assert [r["notes"] for r in parsed.records] == ["second"]
    assert parsed.duplicates == 1
    assert parsed.records[0]["source"] == "fhir:urn:example|7"
