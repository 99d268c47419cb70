"""The appointment record, aligned with FHIR R4 Appointment, and its validation.

A record is a flat mapping of named fields. Every field but ``id`` is a
last-writer-wins register when devices merge (see ``merge.py``), so the set of
fields is fixed here, in one place.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from carnet.protocol.errors import InvalidRecord

STATUSES = (
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
)
DEFAULT_DURATION = timedelta(minutes=30)
TEXT_LIMIT = 4000
# One record must fit, with room to spare, in one padded entry (64 KiB).
RECORD_LIMIT = 32 * 1024

# Field name -> whether it is free text (length-checked, whitespace-trimmed).
_TEXT_FIELDS = (
    "practitioner",
    "practitioner_id",
    "specialty",
    "location",
    "reason",
    "notes",
    "patient_instruction",
    "source",
)


@dataclass
class Appointment:
    """One appointment. ``start``/``end`` are ISO 8601 with a UTC offset."""

    practitioner: str
    start: str
    end: str
    status: str = "booked"
    practitioner_id: str = ""
    specialty: str = ""
    location: str = ""
    reason: str = ""
    notes: str = ""
    patient_instruction: str = ""
    # Import identity (FHIR identifier, iCalendar UID...) so re-imports never duplicate.
    source: str = ""
    created: str = ""
    updated: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Appointment) if f.name != "id")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def parse_datetime(value: str, name: str) -> datetime:
    """Parse an ISO 8601 date-time that carries its UTC offset."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise InvalidRecord(f"{name} {value!r} is not an ISO 8601 date-time") from None
    if not 1000 <= moment.year <= 9000:
        raise InvalidRecord(f"{name} {value!r} is outside the years 1000 to 9000")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidRecord(
            f"{name} {value!r} has no time zone; add one, e.g. {value}+01:00 or {value}Z"
        )
    return moment


def _clean_text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRecord(f"{name} must be text")
    value = value.strip()
    if len(value) > TEXT_LIMIT:
        raise InvalidRecord(f"{name} is longer than {TEXT_LIMIT} characters")
    if "\x00" in value:
        raise InvalidRecord(f"{name} contains a NUL character")
    return value


def validate(changes: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check `changes` (applied over `current`, if editing) and return them normalised.

    Raises InvalidRecord with one line naming the first problem. Nothing is
    written by this function; callers write only what it returns.
    """
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise InvalidRecord(f"unknown field {sorted(unknown)[0]!r}")
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name in _TEXT_FIELDS:
            out[name] = _clean_text(name, value)
        elif name == "status":
            if value not in STATUSES:
                raise InvalidRecord(f"unknown status {value!r}; use one of: {', '.join(STATUSES)}")
            out[name] = value
        elif name in ("start", "end", "created", "updated"):
            out[name] = parse_datetime(value, name).isoformat() if value else ""
    merged = {**(current or {}), **out}
    if not merged.get("practitioner"):
        raise InvalidRecord("practitioner must not be empty")
    if not merged.get("start"):
        raise InvalidRecord("start is required")
    start = parse_datetime(merged["start"], "start")
    if not merged.get("end"):
        out["end"] = (start + DEFAULT_DURATION).isoformat()
    elif parse_datetime(merged["end"], "end") < start:
        raise InvalidRecord(f"end {merged['end']} is before start {merged['start']}")
    if len(json.dumps({**merged, **out}, ensure_ascii=False).encode()) > RECORD_LIMIT:
        raise InvalidRecord(f"the appointment is larger than {RECORD_LIMIT // 1024} KiB")
    return out


def new_record(changes: dict[str, Any]) -> Appointment:
    """A new, validated appointment from user or importer input."""
    values = validate(changes)
    stamp = now_iso()
    values.setdefault("created", stamp)
    values.setdefault("updated", stamp)
    return Appointment(**values)


def start_timestamp(record: dict[str, Any]) -> float:
    """Seconds since the epoch of a stored record's start, for ordering and reminders."""
    return datetime.fromisoformat(record["start"]).timestamp()
