"""Import iCalendar (.ics) files: each VEVENT is one appointment.

Mapping, VEVENT -> carnet record:

- ``practitioner``: ORGANIZER's CN, else SUMMARY, else the ORGANIZER address; an
  event with none of them rejects the file. When the practitioner comes from
  ORGANIZER, the SUMMARY (the event's title, e.g. "Annual check-up") is the ``reason``.
- ``location``: LOCATION; ``notes``: DESCRIPTION.
- ``status``: STATUS CONFIRMED -> booked, TENTATIVE -> pending, CANCELLED -> cancelled;
  no STATUS (or one meant for tasks) -> booked, past events included: a calendar does
  not say whether the patient went.
- ``start``/``end``: DTSTART, then DTEND or DURATION. With neither, the appointment
  gets carnet's default duration (RFC 5545 would make it last no time at all).
  Floating times (no TZID, no Z) are read in this machine's local zone, the zone
  the person who wrote them most likely meant. An all-day (DATE) event starts at
  local midnight and ends at the local midnight after its last day. A TZID must
  be defined by a VTIMEZONE in the file (whose rules are honoured) or be a tz
  database or Windows zone name; any other rejects the file. A VTIMEZONE named
  like a tz database zone gets the database's rules, which are complete where
  exported VTIMEZONEs often carry only the current year's.
- Recurring events (RRULE/RDATE) keep their first occurrence only, DTSTART, as
  carnet stores appointments, not series. An overridden occurrence
  (RECURRENCE-ID) is an appointment of its own; one that overrides the first
  occurrence replaces it. EXDATE is not applied.
- ``created``: CREATED; ``updated``: LAST-MODIFIED (UTC instants).
- ``source``: ``ical:{UID}``, plus ``#{RECURRENCE-ID}`` for an override (as
  ``YYYYMMDDTHHMMSSZ`` in UTC, or as written when floating or a date, so that every
  device computes the same key). Without a UID: a hash of the event's content.
  When a UID appears twice, the highest SEQUENCE wins, then the later event.

carnet's own export (see ``ics_export``) adds ``X-CARNET-*`` properties for what
iCalendar has no place for; they take precedence, and ``X-CARNET-STATUS`` refines
STATUS only while both agree (so cancelling in another app still counts).

An event with any line the parser cannot read is rejected: the file is damaged and
part of the appointment may be lost. VTODO, VJOURNAL and other components are
counted as skipped.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import icalendar

from carnet.daemon import records
from carnet.daemon.formats.common import (
    LONGEST,
    FormatError,
    ParsedFile,
    content_key,
    dedupe,
    finish_record,
    in_range,
    local_datetime,
    next_midnight,
    one_line,
    quote,
    utc_iso,
)

# Fields iCalendar has no property for, written and read back as X-CARNET-*.
X_FIELDS = {
    "practitioner": "X-CARNET-PRACTITIONER",
    "practitioner_id": "X-CARNET-PRACTITIONER-ID",
    "specialty": "X-CARNET-SPECIALTY",
    "reason": "X-CARNET-REASON",
    "patient_instruction": "X-CARNET-PATIENT-INSTRUCTION",
}
X_STATUS = "X-CARNET-STATUS"
X_SOURCE = "X-CARNET-SOURCE"

FROM_ICAL_STATUS = {"CONFIRMED": "booked", "TENTATIVE": "pending", "CANCELLED": "cancelled"}
# carnet status -> the iCalendar STATUS that says the most of it.
TO_ICAL_STATUS = {
    "proposed": "TENTATIVE",
    "pending": "TENTATIVE",
    "waitlist": "TENTATIVE",
    "booked": "CONFIRMED",
    "arrived": "CONFIRMED",
    "checked-in": "CONFIRMED",
    "fulfilled": "CONFIRMED",
    "cancelled": "CANCELLED",
    "noshow": "CANCELLED",
    "entered-in-error": "CANCELLED",
}
# Components that belong to events or time zones, not skipped appointments.
_STRUCTURE = ("VCALENDAR", "VEVENT", "VTIMEZONE", "STANDARD", "DAYLIGHT", "VALARM")
# RFC 5545 TEXT escapes: backslash, semicolon, comma, and N for a line break.
_TEXT_ESCAPE = re.compile(r"\\([\\;,nN])")
# A component boundary: a whole line BEGIN:NAME or END:NAME (they are never folded).
_BOUNDARY = re.compile(rb"^(BEGIN|END):([^\r\n]*?)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


def parse(data: bytes) -> ParsedFile:
    _check_structure(data)
    # icalendar keeps every VTIMEZONE it has parsed in a process-wide cache and
    # resolves later files' TZIDs from it, so whether a file imports would depend
    # on the files read before it. Choosing the provider again empties that cache.
    icalendar.use_zoneinfo()
    try:
        components = icalendar.Calendar.from_ical(data, multiple=True)
    except Exception as error:  # the parser raises anything from ValueError to KeyError
        raise FormatError(f"is not valid iCalendar: {one_line(str(error))}") from None
    events: list[icalendar.Component] = []
    seen: Counter[str] = Counter()
    for top in components:
        for component in top.walk():
            if component.name == "VEVENT":
                events.append(component)
            elif component.name != "VCALENDAR":
                seen[component.name or "unnamed component"] += 1
            if component.name == "VTIMEZONE":
                _check_timezone(component)
    if not events:
        found = ", ".join(f"{n} {name}" for name, n in seen.most_common(3))
        raise FormatError(
            f"has no VEVENT ({'found ' + found if found else 'the calendar is empty'})"
        )
    skipped = Counter({name: n for name, n in seen.items() if name not in _STRUCTURE})
    return _parse_events(events, skipped)


def _parse_events(events: list[icalendar.Component], skipped: Counter[str]) -> ParsedFile:
    wheres = [_where(event, number) for number, event in enumerate(events, start=1)]
    masters = {_uid(e): e for e in events if "RECURRENCE-ID" not in e and _uid(e)}
    overrides = {
        (_uid(event), _rid_text(_when(event, "RECURRENCE-ID", where)))
        for event, where in zip(events, wheres, strict=True)
        if "RECURRENCE-ID" in event
    }
    items = []
    for position, (event, where) in enumerate(zip(events, wheres, strict=True)):
        if event.errors:
            name, message = event.errors[0]
            raise FormatError(f"{where}: {name or 'a line'} is invalid: {one_line(message)}")
        start = _when(event, "DTSTART", where)
        if start is None:
            raise FormatError(f"{where}: has no DTSTART")
        if "RECURRENCE-ID" not in event:
            if (_uid(event), _rid_text(start)) in overrides:
                skipped["occurrence replaced by RECURRENCE-ID"] += 1
                continue
            master = None
        else:
            master = masters.get(_uid(event))
        record = finish_record(_record(event, master, start, where), where)
        items.append(((_sequence(event), position), record))
    kept, duplicates = dedupe(items)
    return ParsedFile("ics", kept, skipped, duplicates)


def _record(
    event: icalendar.Component,
    master: icalendar.Component | None,
    start: date | datetime,
    where: str,
) -> dict[str, Any]:
    def inherited(name: str) -> str:
        # An override that leaves a property out keeps its series' value, as
        # calendar apps show it (RFC 5545 is silent; Apple and Google do this).
        return _text(event, name) or (_text(master, name) if master is not None else "")

    begin, end = _span(event, start, where)
    summary = inherited("SUMMARY")
    values: dict[str, Any] = {
        "start": begin.isoformat(),
        "end": end.isoformat() if end else "",
        "location": inherited("LOCATION"),
        "notes": inherited("DESCRIPTION"),
        "status": _status(event),
        "created": _stamp(event, "CREATED", where),
        "updated": _stamp(event, "LAST-MODIFIED", where),
        "source": _source(event, start, where),
    }
    if X_FIELDS["practitioner"] in event:
        # carnet's own export: SUMMARY is only a title made for other apps.
        return values | {field: _text(event, prop) for field, prop in X_FIELDS.items()}
    organizer = event.get("ORGANIZER")
    if organizer is None and master is not None:
        organizer = master.get("ORGANIZER")
    if isinstance(organizer, list):
        organizer = organizer[0]
    name = str(organizer.params.get("CN", "")).strip() if organizer is not None else ""
    if name:
        return values | {"practitioner": name, "reason": summary if summary != name else ""}
    address = str(organizer or "").strip()
    if address.lower().startswith("mailto:"):
        address = address[len("mailto:") :]
    practitioner = summary or address
    if not practitioner:
        raise FormatError(f"{where}: has no SUMMARY or ORGANIZER to name the practitioner")
    return values | {"practitioner": practitioner}


def _span(
    event: icalendar.Component, start: date | datetime, where: str
) -> tuple[datetime, datetime | None]:
    end = _when(event, "DTEND", where)
    duration = _duration(event, where)
    if not isinstance(start, datetime):
        # All-day: from local midnight to the local midnight after the last day.
        if isinstance(end, date) and not isinstance(end, datetime) and end > start:
            return local_datetime(start), local_datetime(end)
        if duration is not None and duration.days > 0:
            return local_datetime(start), local_datetime(start + timedelta(days=duration.days))
        if end is None or end == start:
            return local_datetime(start), next_midnight(start)
    begin = local_datetime(start)
    if end is not None:
        return begin, local_datetime(end)
    if duration is not None:
        return begin, begin + duration
    return begin, None


def _status(event: icalendar.Component) -> str:
    written = str(event.get("STATUS", "")).strip().upper() or "CONFIRMED"
    status = FROM_ICAL_STATUS.get(written, "booked")
    refined = str(event.get(X_STATUS, "")).strip()
    if refined in records.STATUSES and TO_ICAL_STATUS[refined] == written:
        return refined
    return status


def _source(event: icalendar.Component, start: date | datetime, where: str) -> str:
    if X_SOURCE in event and _text(event, X_SOURCE):
        return _text(event, X_SOURCE)
    uid = _uid(event)
    if not uid:
        parts = [str(event.get(name, "")) for name in ("SUMMARY", "LOCATION", "DESCRIPTION")]
        return content_key("ical:", [*parts, _rid_text(start), str(event.get("ORGANIZER", ""))])
    rid = _when(event, "RECURRENCE-ID", where)
    return f"ical:{uid}#{_rid_text(rid)}" if rid is not None else f"ical:{uid}"


def _rid_text(moment: date | datetime | None) -> str:
    """A moment as the same text on every device: UTC when it has a zone."""
    if moment is None:
        return ""
    if not isinstance(moment, datetime):
        return moment.strftime("%Y%m%d")
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.strftime("%Y%m%dT%H%M%S")
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _when(event: icalendar.Component, name: str, where: str) -> date | datetime | None:
    """A DATE or DATE-TIME property, as written (floating stays naive)."""
    prop = _single(event, name, where)
    if prop is None:
        return None
    try:
        value = prop.dt
    except Exception as error:  # a broken VTIMEZONE fails only when first used
        raise FormatError(f"{where}: {name} is invalid: {one_line(str(error))}") from None
    if isinstance(value, date):
        in_range(value, name, where)
    if isinstance(value, datetime):
        tzid = prop.params.get("TZID")
        if value.tzinfo is None and tzid:
            raise FormatError(f"{where}: {name} uses an unknown time zone {quote(str(tzid))}")
        return value
    if isinstance(value, date):
        return value
    raise FormatError(f"{where}: {name} is not a date or a date-time")


def _duration(event: icalendar.Component, where: str) -> timedelta | None:
    prop = _single(event, "DURATION", where)
    if prop is None:
        return None
    value = getattr(prop, "dt", None)
    if not isinstance(value, timedelta):
        raise FormatError(f"{where}: DURATION is not a duration")
    if abs(value) > LONGEST:
        raise FormatError(f"{where}: DURATION {value.days} days is longer than any appointment")
    return value


def _stamp(event: icalendar.Component, name: str, where: str) -> str:
    moment = _when(event, name, where)
    return utc_iso(local_datetime(moment)) if moment is not None else ""


def _single(event: icalendar.Component, name: str, where: str) -> Any:
    prop = event.get(name)
    if isinstance(prop, list):
        raise FormatError(f"{where}: {name} appears more than once")
    return prop


def _text(event: icalendar.Component, name: str) -> str:
    """A text property; one written several times (some apps do) is joined by lines."""
    prop = event.get(name)
    values = prop if isinstance(prop, list) else [prop] if prop is not None else []
    texts = (_unescaped(value).strip() for value in values)
    return "\n".join(text for text in texts if text)


def _unescaped(value: Any) -> str:
    # icalendar leaves X- properties escaped, but RFC 5545 makes them TEXT by default.
    if isinstance(value, icalendar.vUnknown):
        return _TEXT_ESCAPE.sub(lambda m: "\n" if m[1] in "nN" else m[1], str(value))
    return str(value)


def _uid(event: icalendar.Component) -> str:
    return _text(event, "UID")


def _sequence(event: icalendar.Component) -> int:
    try:
        return int(event.get("SEQUENCE", 0))
    except (TypeError, ValueError):
        return 0


def _where(event: icalendar.Component, number: int) -> str:
    uid = _uid(event)
    return f"event UID {quote(uid)}" if uid else f"event {number} (no UID)"


def _check_structure(data: bytes) -> None:
    """Refuse a truncated or mis-nested file, which the parser would silently drop."""
    open_components: list[tuple[str, int]] = []
    for match in _BOUNDARY.finditer(data):
        kind, name = match.group(1).upper(), match.group(2).strip().upper().decode(errors="replace")
        if kind == b"BEGIN":
            open_components.append((name, match.start()))
        elif not open_components or open_components[-1][0] != name:
            opened = f"BEGIN:{open_components[-1][0]}" if open_components else "nothing"
            line = data.count(b"\n", 0, match.start()) + 1
            raise FormatError(f"line {line}: END:{quote(name)[1:-1]} does not close {opened}")
        else:
            open_components.pop()
    if open_components:
        name, offset = open_components[-1]
        line = data.count(b"\n", 0, offset) + 1
        raise FormatError(f"is truncated: BEGIN:{quote(name)[1:-1]} at line {line} is never closed")


def _check_timezone(zone: icalendar.Component) -> None:
    for part in zone.walk():
        if part.errors:
            name, message = part.errors[0]
            tzid = quote(str(zone.get("TZID", "?")))
            raise FormatError(
                f"VTIMEZONE {tzid}: {name or 'a line'} is invalid: {one_line(message)}"
            )
