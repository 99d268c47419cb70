"""Import a Doctolib ``/account/appointments.json`` document.

That is the document a patient's browser receives from Doctolib (lists such as
``confirmed`` and ``done`` under ``data``); saving it is how a patient gets their
Doctolib history out. Mapping, one appointment -> carnet record:

- ``practitioner``: ``profile.name_with_title`` ("Dr Pierre Paul"), else title,
  first and last name, else ``substitute_name``; none of them rejects the file.
- ``practitioner_id``: ``profile.RPPS`` (the French national practitioner number),
  else ``profile.physician_identifier``, as the bare number.
- ``specialty``: ``profile.speciality`` (a name, or an object with a ``name``).
- ``location``: the practice's ``formal_name`` and ``full_address``.
- ``reason``: the visit motive (``visit_motive_name``, or ``visit_motive.name``).
- ``patient_instruction``: how to get in: floor, intercom, door codes, practice note.
- ``notes``: Doctolib's substitution wording when another practitioner stands in.
- ``status``: ``canceled`` -> cancelled, ``no_show`` -> noshow, in ``done`` or
  ``past`` -> fulfilled, ``confirmed`` -> booked, otherwise pending.
- ``start``/``end``: ``start_date`` / ``end_date`` (they carry their offset).
- ``source``: ``doctolib:{id}``.
"""

from __future__ import annotations

from typing import Any

from carnet.daemon.formats.common import (
    FormatError,
    ParsedFile,
    aware_datetime,
    content_key,
    dedupe,
    finish_record,
    quote,
    text_field,
    typed_field,
)

# The lists a Doctolib /account/appointments.json document files appointments under.
DOCTOLIB_LISTS = ("confirmed", "done", "canceled", "cancelled", "upcoming", "past")
# Lists whose appointments have taken place (unless cancelled or missed).
_DONE_LISTS = ("done", "past")


def parse(lists: dict[str, Any]) -> ParsedFile:
    items = []
    for name in DOCTOLIB_LISTS:
        entries = lists.get(name)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise FormatError(f"data.{name} is not a list")
        for number, entry in enumerate(entries, start=1):
            where = f"{name} appointment {number}"
            if not isinstance(entry, dict):
                raise FormatError(f"{where} is not an object")
            if isinstance(entry.get("id"), str | int):
                where = f"appointment {quote(str(entry['id']))}"
            record = finish_record(_record(entry, name, where), where)
            items.append(((len(items),), record))
    if not items:
        raise FormatError("is a Doctolib appointments document with no appointment in it")
    kept, duplicates = dedupe(items)
    return ParsedFile("doctolib", kept, duplicates=duplicates)


def _record(entry: dict[str, Any], list_name: str, where: str) -> dict[str, Any]:
    profile = _object(entry, "profile", where)
    practice = _object(entry, "practice", where)
    parts = (_text(profile, key, where) for key in ("title", "first_name", "last_name"))
    named = " ".join(part for part in parts if part)
    practitioner = (
        _text(profile, "name_with_title", where) or named or _text(entry, "substitute_name", where)
    )
    if not practitioner:
        raise FormatError(f"{where}: names no practitioner (profile.name_with_title)")
    return {
        "status": _status(entry, list_name),
        "start": _moment(entry, "start_date", where),
        "end": _moment(entry, "end_date", where),
        "practitioner": practitioner,
        "practitioner_id": _text(profile, "RPPS", where)
        or _text(profile, "physician_identifier", where),
        "specialty": _name(profile.get("speciality"), where),
        "location": ", ".join(
            part
            for part in (_text(practice, "formal_name", where), _address(practice, where))
            if part
        ),
        "reason": _text(entry, "visit_motive_name", where)
        or _name(entry.get("visit_motive"), where),
        "notes": _text(entry, "substitution_wording", where),
        "patient_instruction": _access(practice, where),
        "source": _source(entry),
    }


def _status(entry: dict[str, Any], list_name: str) -> str:
    if entry.get("canceled") is True or list_name in ("canceled", "cancelled"):
        return "cancelled"
    if entry.get("no_show") is True:
        return "noshow"
    if entry.get("past") is True or list_name in _DONE_LISTS:
        return "fulfilled"
    return "booked" if entry.get("confirmed") is not False else "pending"


def _source(entry: dict[str, Any]) -> str:
    ident = entry.get("id")
    if isinstance(ident, str | int) and not isinstance(ident, bool) and str(ident).strip():
        return f"doctolib:{str(ident).strip()}"
    return content_key("doctolib:", [entry.get(k) for k in ("start_date", "profile", "practice")])


def _moment(entry: dict[str, Any], key: str, where: str) -> str:
    value = _text(entry, key, where)
    return aware_datetime(value, key, where).isoformat() if value else ""


def _address(practice: dict[str, Any], where: str) -> str:
    full = _text(practice, "full_address", where)
    if full:
        return full
    town = " ".join(_text(practice, key, where) for key in ("zipcode", "city")).strip()
    return ", ".join(p for p in (_text(practice, "address", where), town) if p)


def _access(practice: dict[str, Any], where: str) -> str:
    """Directions to the door, from the practice's own fields."""
    floor = practice.get("floor")
    codes = [_text(practice, key, where) for key in ("code1", "code2")]
    parts = [
        f"Floor {floor}" if isinstance(floor, int) and not isinstance(floor, bool) else "",
        f"Intercom: {_text(practice, 'intercom', where)}" if practice.get("intercom") else "",
        f"Door code: {' / '.join(c for c in codes if c)}" if any(codes) else "",
        _text(practice, "note", where),
        _text(practice, "reception_info", where),
    ]
    return "\n".join(p for p in parts if p)


def _name(value: Any, where: str) -> str:
    """A name given as text, or as an object with a ``name`` (Doctolib uses both)."""
    if isinstance(value, dict):
        return _text(value, "name", where)
    return value.strip() if isinstance(value, str) else ""


def _object(entry: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    return typed_field(entry, key, dict, "an object", where) or {}


def _text(obj: dict[str, Any], key: str, where: str) -> str:
    return text_field(obj, key, where, numbers=True)  # Doctolib sends some ids as numbers
