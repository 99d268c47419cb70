"""Garbage in, one clear ImportRejected out: never a crash, never half a file."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from carnet.daemon.formats import detect, parse_file
from carnet.protocol.errors import ImportRejected

Reject = Callable[..., str]

PRACTITIONER = [{"actor": {"reference": "Practitioner/1", "display": "Dr X"}}]


def appointment(**fields: Any) -> str:
    resource = {
        "resourceType": "Appointment",
        "id": "a1",
        "status": "booked",
        "start": "2026-05-04T14:00:00+02:00",
        "end": "2026-05-04T14:30:00+02:00",
        "participant": PRACTITIONER,
        **fields,
    }
    return json.dumps({k: v for k, v in resource.items() if v is not None})


def ics_event(*lines: str) -> str:
    body = ["BEGIN:VEVENT", "UID:u1", "SUMMARY:Dr X", *lines, "END:VEVENT"]
    return "\r\n".join(
        ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//t//EN", *body, "END:VCALENDAR"]
    )


CASES = {
    "empty": (b"", "is empty"),
    "blank": (b" \n\t\r\n", "is empty"),
    "binary": (bytes(range(256)) * 4, "is not UTF-8 text (byte 0x80 at offset 128)"),
    "utf-16": ('{"resourceType": "Appointment"}'.encode("utf-16"), "is not UTF-8 text"),
    "not a format": (b"Dear doctor,\nsee you on Monday.", "is not an iCalendar (.ics), FHIR"),
    "truncated JSON": (appointment()[:60].encode(), "is not valid JSON: "),
    "JSON of another shape": (b'{"hello": "world"}', "neither FHIR (no resourceType)"),
    "JSON list": (b"[1, 2]", "is JSON (a list of 2 items)"),
    "deep JSON": (b"[" * 100_000, "nested too deeply"),
    "huge number": (b'{"resourceType": 1' + b"0" * 5000 + b"}", "Exceeds the limit"),
    "resourceType not text": (b'{"resourceType": 5}', "is not a FHIR resource"),
    "other resource only": (b'{"resourceType": "Patient", "id": "p"}', "(found 1 Patient)"),
    "end before start": (
        appointment(end="2026-05-04T13:00:00+02:00").encode(),
        "(Appointment/a1): end 2026-05-04T13:00:00+02:00 is before start",
    ),
    "unknown status": (
        appointment(status="maybe").encode(),
        "(Appointment/a1): unknown status 'maybe'",
    ),
    "no status": (appointment(status=None).encode(), "unknown status ''"),
    "no practitioner": (
        appointment(participant=[{"actor": {"reference": "Patient/me"}}]).encode(),
        "(Appointment/a1): names no practitioner",
    ),
    "booked without start": (appointment(start=None, end=None).encode(), "has no start"),
    "time without zone": (
        appointment(start="2026-05-04T14:00:00").encode(),
        "start '2026-05-04T14:00:00' has a time but no time zone",
    ),
    "impossible date": (appointment(start="2026-02-30T10:00:00Z").encode(), "is not an ISO 8601"),
    "year 1": (appointment(start="0001-01-01").encode(), "outside the years 1000-9000"),
    "participant not a list": (
        appointment(participant="Dr X").encode(),
        "participant is not a list",
    ),
    "bundle entry not an object": (
        b'{"resourceType": "Bundle", "entry": [5]}',
        "Bundle entry 1 is not an object",
    ),
    "ndjson bad line": (
        (appointment() + "\n" + appointment(id="a2")[:40] + "\n").encode(),
        "line 2: is not usable JSON",
    ),
    "ics bad DTSTART": (
        ics_event("DTSTART:tomorrow").encode(),
        "event UID 'u1': DTSTART is invalid",
    ),
    "ics no DTSTART": (ics_event().encode(), "event UID 'u1': has no DTSTART"),
    "ics unknown TZID": (
        ics_event("DTSTART;TZID=Mars/Olympus:20260504T140000").encode(),
        "DTSTART uses an unknown time zone 'Mars/Olympus'",
    ),
    "ics end before start": (
        ics_event("DTSTART:20260504T140000Z", "DTEND:20260504T130000Z").encode(),
        "event UID 'u1': end 2026-05-04T13:00:00+00:00 is before start",
    ),
    "ics huge duration": (
        ics_event("DTSTART:20260504T140000Z", "DURATION:P99999999D").encode(),
        "DURATION",
    ),
    "ics truncated": (ics_event("DTSTART:20260504T140000Z").encode()[:-30], "is truncated"),
    "ics only a todo": (
        b"BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
        "has no VEVENT (found 1 VTODO)",
    ),
    "ics huge text": (
        ics_event("DTSTART:20260504T140000Z", "DESCRIPTION:" + "x" * 5000).encode(),
        "notes is longer than 4000 characters",
    ),
    "doctolib without practitioner": (
        b'{"data": {"confirmed": [{"id": 1, "start_date": "2026-05-04T14:00:00+02:00"}]}}',
        "appointment '1': names no practitioner",
    ),
    "doctolib empty": (b'{"data": {"confirmed": [], "done": []}}', "no appointment in it"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_garbage_is_rejected_with_a_reason(case: str, rejection: Reject) -> None:
    content, reason = CASES[case]
    assert reason in rejection(content)


def test_one_bad_appointment_rejects_the_whole_bundle(rejection: Reject) -> None:
    good, bad = json.loads(appointment()), json.loads(appointment(id="a2", status="later"))
    bundle = {"resourceType": "Bundle", "entry": [{"resource": good}, {"resource": bad}]}
    assert "entry 2 (Appointment/a2): unknown status 'later'" in rejection(json.dumps(bundle))


def test_one_bad_event_rejects_the_whole_calendar(rejection: Reject) -> None:
    text = ics_event("DTSTART:20260504T140000Z").replace(
        "END:VCALENDAR",
        "BEGIN:VEVENT\r\nUID:u2\r\nDTSTART:20260504T140000Z\r\nEND:VEVENT\r\nEND:VCALENDAR",
    )
    assert "event UID 'u2': has no SUMMARY or ORGANIZER" in rejection(text)


def test_unreadable_paths(tmp_path: Path) -> None:
    for path in (tmp_path, tmp_path / "missing.ics"):
        with pytest.raises(ImportRejected, match="cannot be read"):
            parse_file(path)


def test_oversized_file(monkeypatch: pytest.MonkeyPatch, rejection: Reject) -> None:
    monkeypatch.setattr(detect, "MAX_BYTES", 1024 * 1024)
    assert "is larger than 1 MB" in rejection(b" " * (1024 * 1024 + 1))


def mutations(corpus: Path, seed: int) -> Iterator[bytes]:
    """Damaged versions of real files: values of the wrong type, cut or spliced bytes."""
    rng = random.Random(seed)
    documents = [
        json.loads(p.read_text()) for p in (corpus / "fhir-r4-examples").glob("Appointment-*")
    ]
    documents.append(json.loads((corpus / "doctolib" / "account-appointments.json").read_text()))
    odd_values: list[Any] = [None, 0, -1, 1.5, True, "", "x", "2020-13-45", "2020-01-01", [], {}]
    for _ in range(1000):
        document = copy.deepcopy(rng.choice(documents))
        for _ in range(rng.randint(1, 3)):
            container, key = _random_slot(document, rng)
            container[key] = copy.deepcopy(rng.choice(odd_values))
        yield json.dumps(document).encode()
    calendars = sorted((corpus / "ics" / "khal").glob("*.ics"))
    splices = [
        b"\r\n",
        b":",
        b";",
        b"\\",
        b"\x00",
        b"BEGIN:VEVENT\r\n",
        b"END:VEVENT\r\n",
        b"TZID=",
    ]
    for _ in range(1000):
        data = bytearray(rng.choice(calendars).read_bytes())
        position = rng.randrange(len(data))
        if rng.random() < 0.5:
            data[position : position + rng.randint(1, 40)] = rng.choice(splices)
        else:
            del data[position:]
        yield bytes(data)


def _random_slot(document: Any, rng: random.Random) -> tuple[Any, Any]:
    """Any (container, key) in a JSON document, picked at random."""
    return rng.choice(list(_slots(document)))


def _slots(value: Any) -> Iterator[tuple[Any, Any]]:
    keys = list(value) if isinstance(value, dict) else range(len(value))
    for key in keys:
        yield value, key
        if isinstance(value[key], dict | list):
            yield from _slots(value[key])


def test_damaged_real_files_never_crash(corpus: Path, tmp_path: Path) -> None:
    path = tmp_path / "damaged"
    outcomes = {"imported": 0, "rejected": 0}
    for data in mutations(corpus, seed=20260504):
        path.write_bytes(data)
        try:
            parse_file(path)
            outcomes["imported"] += 1
        except ImportRejected as error:
            assert "\n" not in str(error)
            outcomes["rejected"] += 1
    assert outcomes["imported"] and outcomes["rejected"]
