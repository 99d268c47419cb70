"""What both exporters need: validated records, their dedup key and a title."""

from __future__ import annotations

import uuid
from typing import Any

from carnet.daemon import records
from carnet.daemon.formats.common import content_key

# Names the UUIDs of exported items, so exporting the same appointment twice gives
# the same FHIR id / iCalendar UID and other tools update it instead of adding a copy.
_NAMESPACE = uuid.UUID("6f1c2a4e-8d7b-5e3a-9c1f-2b4d6e8a0c3e")


def prepare(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record, checked and normalised, with a ``source`` to export under.

    A record typed in carnet has no source; it is exported as ``carnet:{id}`` so
    that importing the export again finds a stable key (and the same record, if
    the importer matches that key to the id).
    """
    values = {name: record.get(name) for name in records.FIELDS if name in record}
    clean = {**values, **records.validate(values)}
    clean.setdefault("status", records.Appointment.status)
    if not clean.get("source"):
        if record.get("id"):
            clean["source"] = f"carnet:{record['id']}"
        else:
            clean["source"] = content_key("carnet:", [clean[k] for k in ("practitioner", "start")])
    return clean


def item_uuid(source: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, source))


def title(record: dict[str, Any]) -> str:
    """A title other apps show in their lists, e.g. "Cardiology — Dr Jeanne Martin"."""
    if record.get("specialty") and record["specialty"] != record["practitioner"]:
        return f"{record['specialty']} — {record['practitioner']}"
    return str(record["practitioner"])
