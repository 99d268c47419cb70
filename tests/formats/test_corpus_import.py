"""Every file of the real-world corpus is imported or rejected with a one-line reason.

The counts below were checked file by file. Rejections fall into a few kinds:
files with nothing carnet can import (a VTODO, a time zone, a Practitioner...),
items without the start or the practitioner an appointment needs, time zones
nobody defines, and damaged files (parse errors, truncation, bad encoding).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from carnet.daemon.formats import ParsedFile
from carnet.protocol.errors import ImportRejected

Results = dict[Path, ParsedFile | ImportRejected]

# folder -> (files accepted, files rejected by kind of reason)
EXPECTED = {
    "doctolib": (1, {"nothing to import": 1}),
    "fhir-r4-examples": (3, {"nothing to import": 9, "no start": 1}),
    "synthea-10-patients": (1, {"nothing to import": 5}),
    "ics/icalendar": (
        61,
        {
            "nothing to import": 27,
            "no start": 31,
            "no practitioner": 13,
            # 4 of these name 'Western/Central Europe' without defining it; each file
            # is judged alone (see ics.parse), whatever was parsed before it.
            "unknown time zone": 5,
            "damaged": 22,
        },
    ),
    "ics/khal": (50, {"unknown time zone": 4, "damaged": 2}),
    "ics/ical4j-valid": (
        63,
        {"nothing to import": 11, "no start": 3, "no practitioner": 2, "damaged": 2},
    ),
    "ics/ical4j-invalid": (12, {"damaged": 8, "no start": 1, "no practitioner": 1}),
}

# Files known to be broken, and the reason their rejection must give.
KNOWN_BROKEN = {
    "ics/icalendar/calendars__broken_dtstart.ics": "DTSTART is invalid",
    "ics/icalendar/calendars__broken_ical.ics": "a line is invalid: Content line could not",
    "ics/icalendar/calendars__issue_104_broken_calendar.ics": "is not valid iCalendar",
    "ics/icalendar/events__issue_104_mark_events_broken.ics": "a line is invalid",
    "ics/icalendar/calendars__parsing_error_in_UTC_offset.ics": "Offset must be less than 24",
    "ics/icalendar/calendars__fuzz_testcase_invalid_month.ics": "is truncated",
    "ics/icalendar/calendars__fuzz_testcase_vtimezone_lone_cr.ics": "is not valid iCalendar",
    "ics/icalendar/calendars__fuzz_testcase_0_char_in_component_name.ics": "is truncated",
    "ics/icalendar/calendars__big_bad_calendar.ics": "BEGIN:VCALENDAR at line 1 is never closed",
    "ics/icalendar/calendars__timezone_same_start_and_offset.ics": "END:VCALENDARD does not",
    "ics/icalendar/calendars__invalid_duration.ics": "DURATION is invalid",
    "ics/icalendar/calendars__issue_1081_invalid_start_and_end.ics": "DTSTART is invalid",
    "ics/icalendar/calendars__issue_1081_invalid_start_valid_end.ics": "DTSTART is invalid",
    "ics/icalendar/calendars__issue_1081_invalid_rrule_freq.ics": "RRULE is invalid",
    "ics/icalendar/calendars__pacific_fiji.ics": "DTSTART appears more than once",
    "ics/icalendar/events__issue_464_invalid_rdate.ics": "RDATE is invalid",
    "ics/icalendar/calendars__issue_722_missing_VTIMEZONE_custom.ics": "time zone 'CUSTOM_tzid'",
    "ics/khal/event_dt_local_missing_tz.ics": "DTSTART uses an unknown time zone 'FOO'",
    "ics/khal/event_rrule_recuid_invalid_tzid.ics": "uses an unknown time zone 'foo'",
    "ics/khal/event_dtr_no_tz_exdatez.ics": "unknown time zone 'LOLOLOL'",
    "ics/khal/event_dtr_notz_untilz.ics": "unknown time zone 'GMT-05.00/-04.00'",
    "ics/khal/invalid_tzoffset.ics": "Offset must be less than 24 hours, was +5328",
    "ics/khal/non_dst_error.ics": "Invalid iCalendar duration: PT-2H",
    # ical4j calls this one valid, but its bytes were damaged: '?' replaced UTF-8 bytes.
    "ics/ical4j-valid/1106817412.ics": "is not UTF-8 text (byte 0xE5 at offset 433)",
    "ics/ical4j-valid/blankTzid.ics": "mandatory TZID not found",
    "ics/ical4j-invalid/0.ics": "has no DTSTART",
    "ics/ical4j-invalid/13-MoonPhase.ics": "is truncated: BEGIN:VEVENT at line 213",
    "ics/ical4j-invalid/bhav23-2.ics": "a line is invalid",
    "ics/ical4j-invalid/boeing.ics": "Wrong datetime format: 2006717T080000Z",
    "ics/ical4j-invalid/lastfm.ics": "GEO is invalid",
    "ics/ical4j-invalid/overlaps.ics": "has no SUMMARY or ORGANIZER to name the practitioner",
    "ics/ical4j-invalid/phpicalendar_sample.ics": "DTSTAMP is invalid",
    "ics/ical4j-invalid/smallcluster.ics": "RRULE is invalid",
    "ics/ical4j-invalid/twinkle.ics": "Wrong datetime format: -0011130T100000",
    "ics/ical4j-invalid/twinkle_orig.ics": "Wrong datetime format: -0011130T100000",
    "fhir-r4-examples/Encounter-example.json": "(Encounter/example): has no period.start",
    "doctolib/booking.json": "is a Doctolib booking page",
    "synthea-10-patients/Practitioner.000.ndjson": "(found 43 Practitioner)",
}

# ical4j's validator refuses these, but what carnet reads in them is sound, so
# they are imported; checked by hand.
ICAL4J_INVALID_BUT_READABLE = {
    "CalendarDataFile.ics": "a property and components named plain 'X' (not X-...)",
    "OZMovies.ics": "bad escapes and a bogus Australia/Sydney VTIMEZONE (tz database used)",
    "core.ics": "VERSION:1.0 and unescaped commas, but iCalendar 2.0 content",
    "eli_courtwright.ics": "no PRODID; TZID=US/Eastern with no VTIMEZONE (a tz database name)",
    "eli_test.ics": "the same as eli_courtwright.ics with a typo in the text",
    "groupwise.ics": "an ATTENDEE address with spaces, which carnet does not read",
    "korganizer.ics": "a blank line before END:VCALENDAR",
    "korganizer-lowercase.ics": "lower-case names, which RFC 5545 makes case-insensitive",
    "schedule-unstable.ics": "CREATED/LAST-MODIFIED written in local time, not UTC",
    "sogo-geo-escaped-semicolon.ics": "an escaped ';' in GEO, which carnet does not read",
    "talios.ics": "a vendor-prefixed TZID (Evolution) with no VTIMEZONE; its tz name is used",
    "tmeher.ics": "an empty CLASS and Exchange-style parameters, which carnet does not read",
}


def kind_of(error: ImportRejected) -> str:
    message = str(error)
    if any(s in message for s in ("has no VEVENT", "has no FHIR Appointment", "booking page")):
        return "nothing to import"
    if "has no DTSTART" in message or "has no period.start" in message:
        return "no start"
    if "to name the practitioner" in message:
        return "no practitioner"
    if "unknown time zone" in message:
        return "unknown time zone"
    return "damaged"


def folder_of(path: Path, corpus: Path) -> str:
    return path.parent.relative_to(corpus).as_posix()


@pytest.mark.parametrize("folder", sorted(EXPECTED))
def test_folder_counts(folder: str, corpus: Path, corpus_results: Results) -> None:
    inside = {p: r for p, r in corpus_results.items() if folder_of(p, corpus) == folder}
    accepted = [p for p, r in inside.items() if isinstance(r, ParsedFile)]
    kinds = Counter(kind_of(r) for r in inside.values() if isinstance(r, ImportRejected))
    assert (len(accepted), dict(kinds)) == EXPECTED[folder]


def test_every_corpus_file_is_covered(corpus: Path, corpus_results: Results) -> None:
    assert {folder_of(p, corpus) for p in corpus_results} == set(EXPECTED)
    assert len(corpus_results) == 339


def test_rejections_are_one_line_and_name_the_file(corpus_results: Results) -> None:
    for path, result in corpus_results.items():
        if isinstance(result, ImportRejected):
            message = str(result)
            assert message.startswith(f"Cannot import file: {path.name}: "), message
            assert "\n" not in message and len(message) < 400, message


@pytest.mark.parametrize("name", sorted(KNOWN_BROKEN))
def test_known_broken_files_are_rejected(name: str, corpus: Path, corpus_results: Results) -> None:
    result = corpus_results[corpus / name]
    assert isinstance(result, ImportRejected)
    assert KNOWN_BROKEN[name] in str(result)


@pytest.mark.parametrize("name", sorted(ICAL4J_INVALID_BUT_READABLE))
def test_ical4j_invalid_files_that_are_readable(
    name: str, corpus: Path, corpus_results: Results
) -> None:
    result = corpus_results[corpus / "ics/ical4j-invalid" / name]
    assert isinstance(result, ParsedFile) and result.records


def test_accepted_records_are_complete(corpus_results: Results) -> None:
    for result in corpus_results.values():
        if isinstance(result, ParsedFile):
            for record in result.records:
                assert record["practitioner"] and record["source"]
                start, end = (datetime.fromisoformat(record[k]) for k in ("start", "end"))
                assert start.utcoffset() is not None and start <= end
            assert len({r["source"] for r in result.records}) == len(result.records)
