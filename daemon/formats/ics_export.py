"""Export records as an iCalendar file, one VEVENT per record.

For other apps each event has a readable SUMMARY ("Cardiology — Dr Jeanne
Martin"), LOCATION, DESCRIPTION (the notes), STATUS (see ``ics.TO_ICAL_STATUS``),
CREATED / LAST-MODIFIED, and DTSTAMP (the last change, as RFC 5545 says for a file
without METHOD, so the same records always give the same bytes).

For carnet to read the file back to identical records:

- DTSTART/DTEND keep the record's UTC offset: UTC is written with ``Z``, any other
  offset with a TZID such as ``UTC+02:00`` defined by a fixed-offset VTIMEZONE
  in the file (iCalendar has no other way to write an offset). Seconds are kept;
  fractions of a second are not (iCalendar has none).
- CREATED / LAST-MODIFIED are UTC by RFC 5545, as carnet's ``created``/``updated``
  always are (``records.now_iso`` and every importer write UTC).
- Fields with no iCalendar property go in ``X-CARNET-*`` properties (see
  ``ics.X_FIELDS``), and ``X-CARNET-STATUS`` keeps the exact FHIR status that
  STATUS can only approximate.
- The UID is the original one for a record imported from iCalendar (with its
  RECURRENCE-ID for an overridden occurrence); otherwise it is a UUID derived
  from the source, which ``X-CARNET-SOURCE`` carries verbatim.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import icalendar

from carnet.daemon.formats.export_common import item_uuid, prepare, title
from carnet.daemon.formats.ics import TO_ICAL_STATUS, X_FIELDS, X_SOURCE, X_STATUS

PRODID = "-//carnet//carnet appointments//EN"
# A RECURRENCE-ID as ``ics._rid_text`` writes it into a source key.
_RID = re.compile(r"(\d{8})(T\d{6}Z?)?")


def export_ics(records: list[dict[str, Any]]) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    offsets: set[timedelta] = set()
    events = []
    for record in records:
        clean = prepare(record)
        event, used = _event(clean)
        events.append(event)
        offsets |= used
    for offset in sorted(offsets):
        calendar.add_component(_fixed_zone(offset))
    for event in events:
        calendar.add_component(event)
    return calendar.to_ical()


def _event(record: dict[str, Any]) -> tuple[icalendar.Event, set[timedelta]]:
    event = icalendar.Event()
    uid, recurrence = _uid(record["source"])
    event.add("uid", uid)
    stamp = record.get("updated") or record.get("created")
    event.add("dtstamp", _utc(stamp) if stamp else datetime.now(UTC).replace(microsecond=0))
    if recurrence:
        event.add("recurrence-id", recurrence)
    start, end = _moment(record["start"]), _moment(record["end"])
    _add_time(event, "dtstart", start)
    _add_time(event, "dtend", end)
    event.add("summary", title(record))
    for name, prop in (("location", "location"), ("notes", "description")):
        if record.get(name):
            event.add(prop, record[name])
    event.add("status", TO_ICAL_STATUS[record["status"]])
    event.add(X_STATUS, icalendar.vText(record["status"]))
    if record.get("created"):
        event.add("created", _utc(record["created"]))
    if record.get("updated"):
        event.add("last-modified", _utc(record["updated"]))
    for field, prop in X_FIELDS.items():
        if record.get(field):
            # icalendar does not know X- properties are text: say so, or it would
            # write line breaks and commas unescaped.
            event.add(prop, icalendar.vText(record[field]))
    if not record["source"].startswith("ical:"):
        event.add(X_SOURCE, icalendar.vText(record["source"]))
    return event, {m.utcoffset() for m in (start, end)} - {None, timedelta(0)}


def _uid(source: str) -> tuple[str, date | datetime | None]:
    """The UID (and RECURRENCE-ID) an ``ical:`` source came from, else a derived UID."""
    if not source.startswith("ical:"):
        return f"{item_uuid(source)}@carnet", None
    uid, hash_mark, rid = source.removeprefix("ical:").rpartition("#")
    match = _RID.fullmatch(rid) if hash_mark else None
    if not match:
        return source.removeprefix("ical:"), None
    day, clock = match.groups()
    if not clock:
        return uid, datetime.strptime(day, "%Y%m%d").date()
    moment = datetime.strptime(day + clock.rstrip("Z"), "%Y%m%dT%H%M%S")
    return uid, moment.replace(tzinfo=UTC) if clock.endswith("Z") else moment


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(microsecond=0)


def _utc(value: str) -> datetime:
    return _moment(value).astimezone(UTC)


def _add_time(event: icalendar.Event, name: str, moment: datetime) -> None:
    offset = moment.utcoffset()
    if not offset:
        event.add(name, moment.astimezone(UTC))
        return
    # The value as written in its own offset, tagged with that offset's VTIMEZONE.
    event.add(name, moment.replace(tzinfo=None), parameters={"TZID": _tzid(offset)})


def _tzid(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _fixed_zone(offset: timedelta) -> icalendar.Timezone:
    zone = icalendar.Timezone()
    zone.add("tzid", _tzid(offset))
    rule = icalendar.TimezoneStandard()
    rule.add("dtstart", datetime(1970, 1, 1))
    rule.add("tzoffsetfrom", offset)
    rule.add("tzoffsetto", offset)
    rule.add("tzname", _tzid(offset))
    zone.add_component(rule)
    return zone
