"""What every importer shares: the result type, the error it raises, and time helpers.

Importers never raise ``ImportRejected`` themselves: they raise ``FormatError`` with a
reason that says where the problem is (a line, an event UID, a resource id) and
``parse_file`` prefixes the file name. That keeps the file name in one place and lets
the importers work on bytes that did not come from a file.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from carnet.daemon import records
from carnet.protocol.errors import InvalidRecord

# Where a reason is quoted back to the user, keep it short enough for one terminal line
# of context: a reason that quotes a 4,000-character field is not more helpful.
_QUOTE_LIMIT = 60
_MESSAGE_LIMIT = 300
# Years outside this range are garbage in an appointment file, and refusing them here
# keeps every later conversion (local zone, durations) clear of datetime's limits.
EARLIEST_YEAR, LATEST_YEAR = 1000, 9000
# Longer than any appointment, short enough that adding it cannot overflow.
LONGEST = timedelta(days=36_600)


class FormatError(Exception):
    """A file's content cannot be imported; the message is one line naming the place."""


@dataclass
class ParsedFile:
    """The appointments of one file, each ready for ``records.new_record`` or storage.

    ``records`` are dicts keyed by ``records.FIELDS``, already normalised by
    ``records.validate``; every one has ``practitioner``, ``start``, ``end``, ``status``,
    ``source`` and all the free-text fields (empty when the file has none), and has
    ``created`` / ``updated`` only when the file says when the appointment was created or
    last changed. ``skipped`` counts what the file held that is not an appointment (e.g.
    ``{"Practitioner": 43}`` or ``{"VTODO": 2}``); ``duplicates`` counts appointments that
    appeared more than once with the same ``source`` (only the last version is kept).
    """

    format: str
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0


def quote(value: object) -> str:
    """``repr`` of a value from the file, shortened so a reason stays one short line."""
    text = repr(value)
    return text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 4] + "...'"


def one_line(text: str) -> str:
    """Collapse whitespace and cut, so a message taken from a parser stays one short line.

    Parsers quote the offending line, which can be a whole paragraph.
    """
    flat = " ".join(text.split())
    return flat if len(flat) <= _MESSAGE_LIMIT else flat[: _MESSAGE_LIMIT - 3] + "..."


def in_range(moment: date, what: str, where: str) -> None:
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise FormatError(
            f"{where}: {what} {moment.isoformat()} is outside the years"
            f" {EARLIEST_YEAR}-{LATEST_YEAR}"
        )


def aware_datetime(value: str, what: str, where: str) -> datetime:
    """An ISO 8601 date-time that must carry its offset, within the plausible years."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FormatError(f"{where}: {what} {quote(value)} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise FormatError(f"{where}: {what} {quote(value)} has a time but no time zone")
    in_range(moment, what, where)
    return moment


def local_datetime(moment: datetime | date) -> datetime:
    """An aware datetime for a floating date-time or a date, in this machine's zone.

    A date means local midnight. ``naive.astimezone()`` asks the C library for the
    offset in force at that very moment, so a summer date gets the summer offset.
    """
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time())
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=None).astimezone()
    return moment


def utc_iso(moment: datetime) -> str:
    """An instant in UTC; ``created``/``updated`` are instants whose offset means nothing."""
    return local_datetime(moment).astimezone(UTC).isoformat(timespec="seconds")


def content_key(prefix: str, parts: object) -> str:
    """A dedup key for an item that has no identifier: a hash of what it says.

    It must be the same on every device, so callers pass the item's own values
    (never something converted to this machine's time zone).
    """
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return f"{prefix}content-sha256:{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"


def finish_record(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate an importer's mapping with the same rules as user input.

    Every free-text field is present (empty when the source has none), so every
    record of every format has the same keys; ``created``/``updated`` are left out
    when unknown, for ``records.new_record`` to fill in.
    """
    full = {name: "" for name in records.FIELDS if name not in ("created", "updated")}
    full["status"] = records.Appointment.status
    full.update({name: value for name, value in values.items() if value is not None})
    for stamp in ("created", "updated"):
        if not full.get(stamp):
            full.pop(stamp, None)
    try:
        return records.validate(full)
    except InvalidRecord as error:
        raise FormatError(f"{where}: {error.detail or error}") from None


def dedupe(items: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> tuple[list[dict[str, Any]], int]:
    """Keep one record per ``source``: the one with the highest rank.

    Ranks are tuples ending in the item's position in the file, so with nothing
    better to go on the later one wins, as a later edit appended to a file would.
    Returns the kept records, in file order, and how many were dropped.
    """
    best: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    for rank, record in items:
        current = best.get(record["source"])
        if current is None or rank > current[0]:
            best[record["source"]] = (rank, record)
    kept = sorted(best.values(), key=lambda item: item[0][-1])
    return [record for _, record in kept], len(items) - len(kept)


def next_midnight(day: date) -> datetime:
    """The end of an all-day item: the following local midnight."""
    return local_datetime(day + timedelta(days=1))


def typed_field(obj: dict[str, Any], key: str, kind: type, noun: str, where: str) -> Any:
    """``obj[key]`` when it is a `kind`, None when absent; else FormatError naming the key."""
    value = obj.get(key)
    if value is None or isinstance(value, kind):
        return value
    raise FormatError(f"{where}: {key} is not {noun}")


def text_field(obj: dict[str, Any], key: str, where: str, numbers: bool = False) -> str:
    """A text field, trimmed ("" when absent); `numbers` also takes a number as its text."""
    value = obj.get(key)
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return str(typed_field(obj, key, str, "text", where) or "").strip()
