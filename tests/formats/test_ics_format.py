"""iCalendar import (zones, all-day, recurrence, keys) and the .ics export."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest

from carnet.daemon.formats import ParsedFile, export_ics, parse_file
from carnet.daemon.records import STATUSES


def khal(corpus: Path, name: str) -> list[dict[str, Any]]:
    return parse_file(corpus / "ics" / "khal" / name).records


def calendar(*lines: str) -> str:
    return "\r\n".join(
        ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *lines, "END:VCALENDAR", ""]
    )


def event(*lines: str) -> list[str]:
    return ["BEGIN:VEVENT", *lines, "END:VEVENT"]


def test_vtimezone_rules_are_honoured(corpus: Path) -> None:
    # The file's own "New Zealand Standard Time" is +01:00 in November 2019.
    (record,) = khal(corpus, "tz_windows_format.ics")
    assert (record["start"], record["end"]) == (
        "2019-11-20T13:00:00+01:00",
        "2019-11-20T14:30:00+01:00",
    )


Zone = Callable[[str], AbstractContextManager[None]]


def test_floating_times_are_local(corpus: Path, in_zone: Zone) -> None:
    (record,) = khal(corpus, "event_dt_floating.ics")
    assert record["start"] == "2014-04-09T09:30:00+02:00"
    with in_zone("America/New_York"):
        (record,) = khal(corpus, "event_dt_floating.ics")
    assert record["start"] == "2014-04-09T09:30:00-04:00"
    assert record["source"] == "ical:floating1234567890"
    assert record["notes"] == "Search for me"


def test_all_day_event_spans_local_midnights(corpus: Path) -> None:
    (record,) = khal(corpus, "event_d.ics")
    assert (record["start"], record["end"]) == (
        "2014-04-09T00:00:00+02:00",
        "2014-04-10T00:00:00+02:00",
    )


def test_recurring_event_keeps_its_first_occurrence(corpus: Path) -> None:
    (record,) = khal(corpus, "event_dt_rr.ics")  # FREQ=DAILY;COUNT=10
    assert record["start"] == "2014-04-09T09:30:00+02:00"


def test_overridden_occurrences_are_their_own_appointments(corpus: Path) -> None:
    records = khal(corpus, "event_rrule_recuid_cancelled.ics")
    assert [(r["source"], r["start"], r["status"]) for r in records] == [
        ("ical:event_rrule_recurrence_id", "2014-06-30T07:00:00+02:00", "booked"),
        ("ical:event_rrule_recurrence_id#20140707T050000Z", "2014-07-07T09:00:00+02:00", "booked"),
        (
            "ical:event_rrule_recurrence_id#20140714T050000Z",
            "2014-07-14T07:00:00+02:00",
            "cancelled",
        ),
    ]


def test_override_of_the_first_occurrence_replaces_it(parse: Callable[..., ParsedFile]) -> None:
    text = calendar(
        *event(
            "UID:s",
            "SUMMARY:Dr Kine",
            "LOCATION:Cabinet",
            "RRULE:FREQ=WEEKLY",
            "DTSTART:20260105T090000Z",
        ),
        *event("UID:s", "RECURRENCE-ID:20260105T090000Z", "DTSTART:20260105T100000Z"),
    )
    parsed = parse(text)
    (record,) = parsed.records
    assert record["source"] == "ical:s#20260105T090000Z"
    assert record["start"] == "2026-01-05T10:00:00+00:00"
    # What the override leaves out, it keeps from its series.
    assert (record["practitioner"], record["location"]) == ("Dr Kine", "Cabinet")
    assert parsed.skipped == {"occurrence replaced by RECURRENCE-ID": 1}


def test_event_without_uid_has_a_stable_content_key(corpus: Path, in_zone: Zone) -> None:
    (record,) = khal(corpus, "without_uid.ics")
    with in_zone("Asia/Tokyo"):
        (elsewhere,) = khal(corpus, "without_uid.ics")
    assert record["source"].startswith("ical:content-sha256:")
    assert record["source"] == elsewhere["source"]  # the same key on every device


def test_repeated_uid_keeps_the_last(corpus: Path) -> None:
    parsed = parse_file(corpus / "ics" / "khal" / "event_dt_multi_uid.ics")
    assert [r["practitioner"] for r in parsed.records] == ["Test original", "Test last"]
    assert parsed.duplicates == 1


def test_higher_sequence_wins(parse: Callable[..., ParsedFile]) -> None:
    text = calendar(
        *event("UID:u", "SEQUENCE:3", "SUMMARY:Dr New", "DTSTART:20260105T090000Z"),
        *event("UID:u", "SEQUENCE:1", "SUMMARY:Dr Old", "DTSTART:20260105T090000Z"),
    )
    assert [r["practitioner"] for r in parse(text).records] == ["Dr New"]


def test_organizer_names_the_practitioner(corpus: Path) -> None:
    (record,) = khal(corpus, "event_dt_duration.ics")
    assert (record["practitioner"], record["reason"]) == ("Frank Nord", "An Event")
    assert (record["start"], record["end"]) == (
        "2014-04-09T09:30:00+02:00",
        "2014-04-09T10:30:00+02:00",
    )


@pytest.mark.parametrize(
    ("line", "status"),
    [
        ("STATUS:CONFIRMED", "booked"),
        ("STATUS:TENTATIVE", "pending"),
        ("STATUS:CANCELLED", "cancelled"),
        ("X-UNRELATED:1", "booked"),
        ("STATUS:NEEDS-ACTION", "booked"),
    ],
)
def test_status(line: str, status: str, parse: Callable[..., ParsedFile]) -> None:
    text = calendar(*event("UID:u", "SUMMARY:Dr X", "DTSTART:20260105T090000Z", line))
    assert parse(text).records[0]["status"] == status


def test_carnet_status_refines_only_a_matching_status(parse: Callable[..., ParsedFile]) -> None:
    def status_of(*lines: str) -> str:
        text = calendar(*event("UID:u", "SUMMARY:Dr X", "DTSTART:20260105T090000Z", *lines))
        return str(parse(text).records[0]["status"])

    assert status_of("STATUS:CONFIRMED", "X-CARNET-STATUS:fulfilled") == "fulfilled"
    # Cancelled in another calendar app after carnet's export: the app wins.
    assert status_of("STATUS:CANCELLED", "X-CARNET-STATUS:fulfilled") == "cancelled"


TRICKY = {
    "practitioner": "Dr Jeanne Martin, MD; Ph.D \\ cardio",
    "practitioner_id": "10003456789",
    "specialty": "Cardiology",
    "location": "Hôpital Européen, 20 rue Leblanc;\n75015 Paris",
    "reason": "Palpitations, again; see letter",
    "notes": "Line one\nLine two, with: colon; semicolon \\ backslash\n\nPara 2 ✓",
    "patient_instruction": "Fast from 8 pm\nBring: ECG",
    "created": "2026-01-02T03:04:05+00:00",
    "updated": "2026-01-03T03:04:05+00:00",
}


def tricky(start: str, end: str, status: str, source: str) -> dict[str, Any]:
    return {"start": start, "end": end, "status": status, "source": source, **TRICKY}


def test_export_parses_and_round_trips_every_field(tmp_path: Path) -> None:
    records = [
        tricky("2026-03-01T09:30:00+05:30", "2026-03-01T10:00:00+05:30", status, f"doctolib:{n}")
        for n, status in enumerate(STATUSES)
    ]
    records += [
        tricky("2026-07-01T09:30:00-03:00", "2026-07-01T11:00:00-03:00", "booked", "ical:abc@x"),
        tricky(
            "2026-07-02T09:30:00+00:00",
            "2026-07-02T09:45:00+00:00",
            "fulfilled",
            "fhir:Encounter/9",
        ),
        tricky(
            "2026-07-03T09:30:00+02:00",
            "2026-07-03T09:45:00+02:00",
            "booked",
            "ical:s#20260703T073000Z",
        ),
        tricky(
            "2026-07-04T00:00:00+02:00", "2026-07-05T00:00:00+02:00", "booked", "ical:d#20260704"
        ),
    ]
    data = export_ics(records)
    parsed = icalendar.Calendar.from_ical(data)
    events = parsed.walk("VEVENT")
    assert len(events) == len(records)
    assert all(e.get("DTSTAMP") is not None and e.get("UID") for e in events)
    assert str(events[0]["SUMMARY"]) == f"Cardiology — {TRICKY['practitioner']}"
    assert events[0]["DTSTART"].dt.utcoffset() == timedelta(hours=5, minutes=30)
    assert str(events[-4]["UID"]) == "abc@x"  # an iCalendar source keeps its UID
    assert str(events[-2]["UID"]) == "s" and "RECURRENCE-ID" in events[-2]
    assert b"X-CARNET-SOURCE:doctolib:0" in data
    assert b"LOCATION:H\xc3\xb4pital Europ\xc3\xa9en\\, 20 rue Leblanc\\;\\n75015 Paris" in data

    path = tmp_path / "export.ics"
    path.write_bytes(data)
    assert parse_file(path).records == records


def test_export_is_deterministic_and_other_apps_read_it(tmp_path: Path) -> None:
    record = tricky(
        "2026-03-01T09:30:00+01:00", "2026-03-01T10:00:00+01:00", "booked", "doctolib:1"
    )
    assert export_ics([record]) == export_ics([record])
    # An app that ignores X-CARNET-* still sees the practitioner, place and times.
    plain = b"\r\n".join(
        line for line in export_ics([record]).split(b"\r\n") if not line.startswith(b"X-CARNET")
    )
    path = tmp_path / "plain.ics"
    path.write_bytes(plain)
    (seen,) = parse_file(path).records
    assert seen["practitioner"] == f"Cardiology — {TRICKY['practitioner']}"
    assert (seen["start"], seen["location"]) == (record["start"], TRICKY["location"])
