"""Export records as a FHIR R4 Bundle (type ``collection``) of Appointments.

Every carnet field has a standard home, so the export needs no extension, and
``fhir.py`` reads each back to the same value:

- ``source`` -> the first ``identifier``: ``fhir:{system}|{value}`` keys become that
  identifier again; any other key (``ical:``, ``doctolib:``, ``carnet:``,
  ``fhir:Type/id``) is kept verbatim with the system ``urn:carnet:source``.
- ``status``, ``start``, ``end``, ``created``, ``patientInstruction`` as such;
  ``updated`` -> ``meta.lastUpdated``; ``notes`` -> ``comment``.
- ``specialty`` -> ``specialty[0].text``; ``reason`` -> ``reasonCode[0].text``.
- ``practitioner`` -> an attending (ATND) participant whose actor has type
  Practitioner, the name as display and ``practitioner_id`` as its identifier
  (``system|value`` split back); ``location`` -> a participant whose actor has type
  Location.

The Appointment id (and the entry's ``urn:uuid`` fullUrl) is a UUID derived from
the source, so re-exports keep ids stable. Invariants: app-2 (start <= end) holds
because records are validated; app-3 holds because every record has start and
end; app-4 holds because no cancelationReason is written (a cancellation reason
imported from FHIR lives in the notes).
"""

from __future__ import annotations

from typing import Any

from carnet.daemon.formats.export_common import item_uuid, prepare
from carnet.daemon.formats.fhir import CARNET_SOURCE_SYSTEM

_ATTENDER = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "ATND",
            "display": "attender",
        }
    ]
}
# Appointments not yet settled: their participants have still to answer.
_UNSETTLED = ("proposed", "pending", "waitlist")


def export_fhir(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A FHIR R4 Bundle (collection) with one Appointment per record."""
    entries = []
    for record in records:
        appointment = _appointment(prepare(record))
        entries.append({"fullUrl": f"urn:uuid:{appointment['id']}", "resource": appointment})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "collection"}
    if entries:  # FHIR JSON forbids empty arrays
        bundle["entry"] = entries
    return bundle


def _appointment(record: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Appointment", "id": item_uuid(record["source"])}
    if record.get("updated"):
        resource["meta"] = {"lastUpdated": record["updated"]}
    resource["identifier"] = [_identifier(record["source"])]
    resource["status"] = record["status"]
    if record.get("specialty"):
        resource["specialty"] = [{"text": record["specialty"]}]
    if record.get("reason"):
        resource["reasonCode"] = [{"text": record["reason"]}]
    resource["start"] = record["start"]
    resource["end"] = record["end"]
    if record.get("created"):
        resource["created"] = record["created"]
    if record.get("notes"):
        resource["comment"] = record["notes"]
    if record.get("patient_instruction"):
        resource["patientInstruction"] = record["patient_instruction"]
    resource["participant"] = _participants(record)
    return resource


def _identifier(source: str) -> dict[str, str]:
    system, bar, value = source.removeprefix("fhir:").partition("|")
    if source.startswith("fhir:") and bar and ":" in system and value:
        return {"system": system, "value": value}
    return {"system": CARNET_SOURCE_SYSTEM, "value": source}


def _participants(record: dict[str, Any]) -> list[dict[str, Any]]:
    answer = "needs-action" if record["status"] in _UNSETTLED else "accepted"
    actor: dict[str, Any] = {"type": "Practitioner", "display": record["practitioner"]}
    if record.get("practitioner_id"):
        actor["identifier"] = _practitioner_identifier(record["practitioner_id"])
    people = [{"type": [_ATTENDER], "actor": actor, "required": "required", "status": answer}]
    if record.get("location"):
        place = {"type": "Location", "display": record["location"]}
        people.append({"actor": place, "required": "required", "status": answer})
    return people


def _practitioner_identifier(token: str) -> dict[str, str]:
    """``system|value`` back to an Identifier; a bare number stays a bare value."""
    system, bar, value = token.partition("|")
    if bar and ":" in system and value:
        return {"system": system, "value": value}
    return {"value": token}
