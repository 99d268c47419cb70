"""Import FHIR R4 Appointments and Encounters (one resource, a Bundle, or ndjson).

Mapping, Appointment -> carnet record:

- ``status`` is kept as is (carnet's statuses are FHIR's); any other value rejects
  the file. ``start``/``end`` are kept with their offsets. A ``proposed``,
  ``cancelled`` or ``waitlist`` appointment may lack ``start`` (invariant app-3):
  then the first ``requestedPeriod.start`` is used. With no ``end``,
  ``minutesDuration`` gives it, else carnet's default duration. A date without a
  time means local midnight on this machine.
- ``practitioner``: the names of the Practitioner / PractitionerRole participants
  (``actor.display``, else the resolved resource's name), joined with ", ".
  ``practitioner_id``: the first such participant's identifier as ``system|value``
  (FHIR token syntax, e.g. an RPPS or NPI): from ``actor.identifier``, the resolved
  resource, or a conditional reference ``Practitioner?identifier=system|value``.
  With no practitioner, the fallback is another actor that is not the patient
  (HealthcareService, Organization, a display-only actor), then the specialty or
  service type (a walk-in "General practice" request names no one yet). With none of
  those the file is rejected.
- ``location``: the Location participant's display or resolved name.
- ``specialty``: ``specialty`` texts, else ``serviceType``.
- ``reason``: ``reasonCode`` texts and ``reasonReference`` displays, joined with "; ".
- ``notes``: ``description``, ``comment`` and ``cancelationReason``, one paragraph each.
- ``patient_instruction``: ``patientInstruction``.
- ``created``: ``created``; ``updated``: ``meta.lastUpdated`` (both as UTC instants).

Encounter (a past or planned visit, e.g. Synthea's history) -> record: the status
follows ``ENCOUNTER_STATUS`` (``finished`` -> ``fulfilled``); ``period`` gives start
and end; ``participant.individual`` the practitioner; ``serviceType`` then ``type``
the specialty; ``reasonCode`` / ``reasonReference`` the reason; the first
``location`` the location, else ``serviceProvider``, which is also the practitioner
fallback.

``source`` is ``fhir:{system}|{value}`` from the first identifier, else
``fhir:{resourceType}/{id}``. An identifier in ``CARNET_SOURCE_SYSTEM`` (carnet's own
export) carries the source verbatim, so a record that came from iCalendar or
Doctolib keeps its key through a FHIR export. Other resource types (Practitioner,
Location, Organization, ...) are only used to resolve references and are counted
as skipped.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from carnet.daemon import records
from carnet.daemon.formats.common import (
    FormatError,
    ParsedFile,
    aware_datetime,
    content_key,
    dedupe,
    finish_record,
    in_range,
    local_datetime,
    quote,
    text_field,
    typed_field,
    utc_iso,
)

CARNET_SOURCE_SYSTEM = "urn:carnet:source"
IMPORTED = ("Appointment", "Encounter")

# FHIR R4 Encounter.status -> Appointment.status, the nearest meaning for each code.
ENCOUNTER_STATUS = {
    "planned": "booked",
    "arrived": "arrived",
    "triaged": "checked-in",
    "in-progress": "arrived",
    "onleave": "arrived",
    "finished": "fulfilled",
    "cancelled": "cancelled",
    "entered-in-error": "entered-in-error",
    # Nothing is known but that the visit exists: treat it as still planned.
    "unknown": "booked",
}
# Appointment statuses allowed to have no start (invariant app-3).
UNSCHEDULED = ("proposed", "cancelled", "waitlist")

PRACTITIONER_TYPES = ("Practitioner", "PractitionerRole")
# Participants who cannot be the practitioner: the patient, family, places, devices.
NOT_CARERS = ("Patient", "RelatedPerson", "Group", "Location", "Device")

_FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}$")
# The type in a relative or absolute reference: ".../Practitioner/123[/_history/2]".
_REF_TYPE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9.\-]{1,64}(?:/_history/[^/]+)?$")


def parse_document(document: dict[str, Any]) -> ParsedFile:
    """A FHIR JSON document: one resource, or a Bundle of them."""
    if document.get("resourceType") == "Bundle":
        entries = _list(document, "entry", "Bundle")
        found: list[tuple[str, Any, str | None]] = []
        for number, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict):
                raise FormatError(f"Bundle entry {number} is not an object")
            url = entry.get("fullUrl")
            found.append((f"entry {number}", entry.get("resource"), _str_or_none(url)))
        return _parse(found)
    return _parse([("resource", document, None)])


def parse_ndjson(rows: list[tuple[int, Any]]) -> ParsedFile:
    """FHIR bulk data: one resource per line."""
    return _parse([(f"line {number}", resource, None) for number, resource in rows])


def _parse(found: list[tuple[str, Any, str | None]]) -> ParsedFile:
    resolver = Resolver()
    wanted: list[tuple[str, dict[str, Any], str | None]] = []
    skipped: Counter[str] = Counter()
    for where, resource, url in found:
        if resource is None:
            skipped["entry without resource"] += 1
            continue
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(kind, str) or not kind:
            raise FormatError(f"{where}: is not a FHIR resource (an object with resourceType)")
        resolver.add(resource, url)
        if kind in IMPORTED:
            wanted.append((f"{where} ({kind}/{resource.get('id', '?')})", resource, url))
        else:
            skipped[kind] += 1
    if not wanted:
        found_text = ", ".join(f"{n} {kind}" for kind, n in skipped.most_common(3))
        raise FormatError(f"has no FHIR Appointment or Encounter (found {found_text or 'nothing'})")
    items = []
    for position, (where, resource, url) in enumerate(wanted):
        mapper = _appointment if resource["resourceType"] == "Appointment" else _encounter
        values = mapper(resource, where, resolver)
        if not values["practitioner"]:
            raise FormatError(
                f"{where}: names no practitioner (no Practitioner participant,"
                " nor a specialty or service to name instead)"
            )
        record = finish_record({**values, "source": _source(resource, url)}, where)
        items.append(((position,), record))
    kept, duplicates = dedupe(items)
    return ParsedFile("fhir", kept, skipped, duplicates)


# --- the two mappings --------------------------------------------------------------


def _appointment(res: dict[str, Any], where: str, resolver: Resolver) -> dict[str, Any]:
    status = _str(res, "status", where)
    if status not in records.STATUSES:
        raise FormatError(f"{where}: unknown status {quote(status)}")
    start = _when(res, "start", where)
    if start is None and status in UNSCHEDULED:
        periods = _list(res, "requestedPeriod", where)
        if periods:
            start = _when(_dict(periods[0], "requestedPeriod", where), "start", where)
    if start is None:
        raise FormatError(f"{where}: has no start (a {status} appointment needs one)")
    end = _when(res, "end", where)
    minutes = res.get("minutesDuration")
    if end is None and isinstance(minutes, int) and 0 < minutes < 100_000:
        end = start + timedelta(minutes=minutes)
    people = _participants(res, "participant", "actor", resolver, where)
    specialty = _concepts(res, "specialty", where) or _concepts(res, "serviceType", where)
    cancel = _concept_text(res.get("cancelationReason"))
    return {
        "status": status,
        "start": start.isoformat(),
        "end": end.isoformat() if end else "",
        "practitioner": people.practitioner() or specialty,
        "practitioner_id": people.practitioner_id,
        "location": people.location,
        "specialty": specialty,
        "reason": _reasons(res, resolver, where),
        "notes": _paragraphs(
            _str(res, "description", where),
            _str(res, "comment", where),
            f"Cancellation reason: {cancel}" if cancel else "",
        ),
        "patient_instruction": _str(res, "patientInstruction", where),
        "created": _stamp(res, "created", where),
        "updated": _last_updated(res, where),
    }


def _encounter(res: dict[str, Any], where: str, resolver: Resolver) -> dict[str, Any]:
    code = _str(res, "status", where)
    if code not in ENCOUNTER_STATUS:
        raise FormatError(f"{where}: unknown Encounter status {quote(code)}")
    period = _dict(res.get("period") or {}, "period", where)
    start = _when(period, "start", where)
    if start is None:
        raise FormatError(f"{where}: has no period.start")
    end = _when(period, "end", where)
    people = _participants(res, "participant", "individual", resolver, where)
    places = [
        resolver.name(_dict(item, "location", where).get("location"), res)
        for item in _list(res, "location", where)
    ]
    provider = resolver.name(res.get("serviceProvider"), res)
    service = _concept_text(res.get("serviceType"))
    specialty = service or _concepts(res, "type", where)
    return {
        "status": ENCOUNTER_STATUS[code],
        "start": start.isoformat(),
        "end": end.isoformat() if end else "",
        "practitioner": people.practitioner() or provider or specialty,
        "practitioner_id": people.practitioner_id,
        "location": next((p for p in places if p), "") or provider,
        "specialty": specialty,
        "reason": _reasons(res, resolver, where),
        "updated": _last_updated(res, where),
    }


class _People:
    """The participants of a visit, sorted by the part they play."""

    def __init__(self) -> None:
        self.practitioners: list[str] = []
        self.practitioner_id = ""
        self.location = ""
        self.others: list[str] = []

    def practitioner(self) -> str:
        names = self.practitioners or self.others[:1]
        return ", ".join(dict.fromkeys(names))


def _participants(
    res: dict[str, Any], key: str, actor_key: str, resolver: Resolver, where: str
) -> _People:
    people = _People()
    for item in _list(res, key, where):
        ref = _dict(item, key, where).get(actor_key)
        if ref is None:
            continue  # a role to be filled ("an attender"), nobody named yet
        ref = _dict(ref, f"{key}.{actor_key}", where)
        kind = resolver.type_of(ref, res)
        name = resolver.name(ref, res)
        if kind in PRACTITIONER_TYPES:
            if name:
                people.practitioners.append(name)
            if not people.practitioner_id:
                people.practitioner_id = resolver.identifier(ref, res)
        elif kind == "Location":
            people.location = people.location or name
        elif kind not in NOT_CARERS and name:
            people.others.append(name)
    return people


def _reasons(res: dict[str, Any], resolver: Resolver, where: str) -> str:
    texts = [_concept_text(c) for c in _list(res, "reasonCode", where)]
    texts += [resolver.name(r, res) for r in _list(res, "reasonReference", where)]
    return "; ".join(dict.fromkeys(t for t in texts if t))


def _source(res: dict[str, Any], url: str | None) -> str:
    identifiers = res.get("identifier")
    first = identifiers[0] if isinstance(identifiers, list) and identifiers else None
    if isinstance(first, dict):
        system, value = first.get("system"), first.get("value")
        if system == CARNET_SOURCE_SYSTEM and isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(system, str) and isinstance(value, str) and system and value:
            return f"fhir:{system}|{value}"
    if isinstance(res.get("id"), str) and res["id"]:
        return f"fhir:{res['resourceType']}/{res['id']}"
    if url:
        return f"fhir:{url}"
    return content_key("fhir:", res)


# --- references ---------------------------------------------------------------------


class Resolver:
    """Finds the resources a reference points to, among those in the same file.

    References come as ``Type/id``, absolute URLs, ``urn:uuid:`` full URLs,
    conditional ``Type?identifier=system|value`` (Synthea), a logical
    ``Reference.identifier``, or ``#id`` for a contained resource.
    """

    def __init__(self) -> None:
        self._by_ref: dict[str, dict[str, Any]] = {}

    def add(self, resource: dict[str, Any], url: str | None) -> None:
        kind, rid = resource["resourceType"], resource.get("id")
        if isinstance(rid, str):
            self._by_ref[f"{kind}/{rid}"] = resource
        if url:
            self._by_ref[url] = resource
        for ident in _safe_list(resource.get("identifier")):
            token = _token(ident)
            if token:
                self._by_ref.setdefault(f"{kind}?identifier={token}", resource)
                self._by_ref.setdefault(f"?identifier={token}", resource)

    def find(self, ref: Any, holder: dict[str, Any]) -> dict[str, Any] | None:
        if not isinstance(ref, dict):
            return None
        target = ref.get("reference")
        if isinstance(target, str):
            if target.startswith("#"):
                for item in _safe_list(holder.get("contained")):
                    if isinstance(item, dict) and item.get("id") == target[1:]:
                        return item
            found = self._by_ref.get(target)
            match = _REF_TYPE.search(target)
            if found is None and match:
                found = self._by_ref.get(target[match.start(1) :].split("/_history/")[0])
            if found is not None:
                return found
        token = _token(ref.get("identifier"))
        return self._by_ref.get(f"?identifier={token}") if token else None

    def type_of(self, ref: dict[str, Any], holder: dict[str, Any]) -> str:
        if isinstance(ref.get("type"), str):
            return str(ref["type"])
        target = ref.get("reference")
        if isinstance(target, str):
            head = target.split("?", 1)[0]
            if "?" in target and head.isalpha():
                return head
            match = _REF_TYPE.search(target)
            if match:
                return match.group(1)
        found = self.find(ref, holder)
        return str(found.get("resourceType", "")) if found else ""

    def name(self, ref: Any, holder: dict[str, Any]) -> str:
        """The display of a reference, else the name of what it points to."""
        if not isinstance(ref, dict):
            return ""
        display = _plain(ref.get("display"))
        if display:
            return display
        found = self.find(ref, holder)
        if found is not None and found.get("resourceType") == "PractitionerRole":
            # A role names its practitioner; one step only, so a role that points
            # at itself (or at another role) cannot send this round in circles.
            display = _plain(_safe_dict(found.get("practitioner")).get("display"))
            return display or _resource_name(self._practitioner_of(found))
        return _resource_name(found)

    def identifier(self, ref: dict[str, Any], holder: dict[str, Any]) -> str:
        """The first identifier of a practitioner reference, as ``system|value``."""
        token = _token(ref.get("identifier"))
        if token:
            return token
        found = self.find(ref, holder)
        if found is not None and found.get("resourceType") == "PractitionerRole":
            token = _token(_safe_dict(found.get("practitioner")).get("identifier"))
            if token:
                return token
            found = self._practitioner_of(found)
        if found is not None:
            identifiers = _safe_list(found.get("identifier"))
            return _token(identifiers[0]) if identifiers else ""
        target = ref.get("reference")
        if isinstance(target, str) and "?identifier=" in target:
            return target.split("?identifier=", 1)[1]
        return ""

    def _practitioner_of(self, role: dict[str, Any]) -> dict[str, Any] | None:
        found = self.find(role.get("practitioner"), role)
        return found if found is not None and found.get("resourceType") == "Practitioner" else None


def _resource_name(resource: dict[str, Any] | None) -> str:
    if resource is None:
        return ""
    kind = resource.get("resourceType")
    if kind in ("Practitioner", "Patient", "RelatedPerson"):
        names = [n for n in _safe_list(resource.get("name")) if isinstance(n, dict)]
        return _human_name(names[0]) if names else ""
    if kind == "Condition":
        return _concept_text(resource.get("code"))
    return _plain(resource.get("name"))


def _human_name(name: dict[str, Any]) -> str:
    if _plain(name.get("text")):
        return _plain(name.get("text"))
    parts = [*_safe_list(name.get("prefix")), *_safe_list(name.get("given"))]
    parts += [name.get("family"), *_safe_list(name.get("suffix"))]
    return " ".join(_plain(p) for p in parts if _plain(p))


def _token(identifier: Any) -> str:
    """An Identifier as FHIR's search token ``system|value`` (just ``value`` if no system)."""
    if not isinstance(identifier, dict) or not isinstance(identifier.get("value"), str):
        return ""
    value = identifier["value"].strip()
    system = identifier.get("system")
    if value and isinstance(system, str) and system:
        return f"{system}|{value}"
    return value


# --- typed access: a wrong type in an imported resource rejects the file ------------


def _dict(value: Any, what: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormatError(f"{where}: {what} is not an object")
    return value


def _list(res: dict[str, Any], key: str, where: str) -> list[Any]:
    return typed_field(res, key, list, "a list", where) or []


def _str(res: dict[str, Any], key: str, where: str) -> str:
    return text_field(res, key, where)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _safe_list(value: Any) -> list[Any]:
    """For resources only used to name things: a malformed one just names nothing."""
    return value if isinstance(value, list) else []


def _safe_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _when(res: dict[str, Any], key: str, where: str) -> datetime | None:
    """A FHIR dateTime/instant; a full date means local midnight."""
    value = _str(res, key, where)
    if not value:
        return None
    if "T" in value:
        return aware_datetime(value, key, where)
    if not _FULL_DATE.match(value):
        raise FormatError(f"{where}: {key} {quote(value)} is not a full date or date-time")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise FormatError(f"{where}: {key} {quote(value)} is not a date") from None
    in_range(day, key, where)
    return local_datetime(day)


def _stamp(res: dict[str, Any], key: str, where: str) -> str:
    moment = _when(res, key, where)
    return utc_iso(moment) if moment else ""


def _last_updated(res: dict[str, Any], where: str) -> str:
    return _stamp(_dict(res.get("meta") or {}, "meta", where), "lastUpdated", where)


def _concept_text(concept: Any) -> str:
    """A CodeableConcept's human text: its ``text``, else its first coding's display."""
    if not isinstance(concept, dict):
        return ""
    displays = (
        _plain(c.get("display")) for c in _safe_list(concept.get("coding")) if isinstance(c, dict)
    )
    return _plain(concept.get("text")) or next((d for d in displays if d), "")


def _plain(value: Any) -> str:
    """Text from a resource only used to name things; anything else names nothing."""
    return value.strip() if isinstance(value, str) else ""


def _concepts(res: dict[str, Any], key: str, where: str) -> str:
    texts = (_concept_text(c) for c in _list(res, key, where))
    return ", ".join(dict.fromkeys(t for t in texts if t))


def _paragraphs(*texts: str) -> str:
    return "\n\n".join(t for t in texts if t)
