"""Appointment files for the daemon's tests, written the way other programs write them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path


def ics_text(count: int, prefix: str, first: datetime | None = None) -> str:
    """An iCalendar file of `count` one-off events with stable UIDs (``prefix-N``)."""
    start = first or datetime(2031, 1, 1, 8, 0, tzinfo=UTC)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//carnet tests//EN"]
    for n in range(count):
        moment = (start + timedelta(minutes=30 * n)).strftime("%Y%m%dT%H%M%SZ")
        lines += [
            "BEGIN:VEVENT",
            f"UID:{prefix}-{n}@carnet.test",
            "DTSTAMP:20260101T000000Z",
            f"DTSTART:{moment}",
            "DURATION:PT30M",
            f"SUMMARY:Dr {prefix.title()} {n}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def write_ics(path: Path, count: int, prefix: str) -> Path:
    path.write_text(ics_text(count, prefix), newline="")
    return path


def fhir_bundle_text(count: int, prefix: str) -> str:
    """A FHIR R4 Bundle of `count` booked Appointments with stable identifiers."""
    entries = [
        {
            "resource": {
                "resourceType": "Appointment",
                "id": f"{prefix}-{n}",
                "identifier": [{"system": "urn:carnet-tests", "value": f"{prefix}-{n}"}],
                "status": "booked",
                "start": f"2031-02-01T{8 + n % 10:02d}:{n % 60:02d}:00Z",
                "end": f"2031-02-01T{9 + n % 10:02d}:{n % 60:02d}:00Z",
                "participant": [{"actor": {"display": f"Dr {prefix} {n}"}, "status": "accepted"}],
            }
        }
        for n in range(count)
    ]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})
