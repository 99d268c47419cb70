"""Recognise a file's format from its content, whatever its name says.

People rename files ("export.txt", "rdv.json" that is really ndjson), so the
extension is never trusted. The first bytes tell iCalendar (``BEGIN:``) from JSON
(``{``); a JSON document is FHIR when it has a ``resourceType`` and Doctolib when
it has the lists of an ``/account/appointments.json`` document; one JSON object per
line is FHIR bulk data (ndjson).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from carnet.daemon.formats.common import FormatError, one_line
from carnet.daemon.formats.doctolib import DOCTOLIB_LISTS

# Far above any real export (the 10-patient Synthea Encounter file is 2 MB) and low
# enough that a mistaken multi-gigabyte file is refused before it is read.
MAX_BYTES = 64 * 1024 * 1024

Kind = Literal["ics", "fhir", "fhir-ndjson", "doctolib"]


@dataclass
class Detected:
    kind: Kind
    # Raw bytes for iCalendar (its parser decodes them); the parsed document for JSON;
    # (line number, resource) pairs for ndjson.
    content: Any


def read_limited(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as error:
        raise FormatError(f"cannot be read: {one_line(error.strerror or str(error))}") from None
    if len(data) > MAX_BYTES:
        raise FormatError(f"is larger than {MAX_BYTES // (1024 * 1024)} MB; split it first")
    return data


def detect(data: bytes) -> Detected:
    text = _decode(data)
    head = text.lstrip()
    if not head:
        raise FormatError("is empty")
    if head[:6].upper() == "BEGIN:":
        return Detected("ics", text.encode())
    if head[0] not in "{[":
        raise FormatError(
            "is not an iCalendar (.ics), FHIR JSON or Doctolib appointments.json file"
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        lines = _ndjson(text)
        if lines is None:
            raise FormatError(f"is not valid JSON: {_unusable(error)}") from None
        return Detected("fhir-ndjson", lines)
    except (ValueError, RecursionError) as error:
        raise FormatError(f"is not usable JSON: {_unusable(error)}") from None
    return _classify(document)


def _decode(data: bytes) -> str:
    # RFC 5545 and RFC 8259 both say UTF-8. Decoding leniently would store mojibake
    # in a health record, so a file in another encoding is refused with the place.
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FormatError(
            f"is not UTF-8 text (byte 0x{data[error.start]:02X} at offset {error.start});"
            " it is damaged or in another encoding: re-save it as UTF-8"
        ) from None


def _ndjson(text: str) -> list[tuple[int, Any]] | None:
    """Parse one JSON value per line, or None if the text is not ndjson at all."""
    rows: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except (ValueError, RecursionError) as error:
            if not rows:
                return None  # not even the first line is JSON: report it as plain JSON
            raise FormatError(f"line {number}: is not usable JSON: {_unusable(error)}") from None
    if len(rows) < 2:
        return None
    return rows


def _unusable(error: ValueError | RecursionError) -> str:
    """Why json.loads failed, in a few words (beyond syntax: depth, huge numbers)."""
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return str(error).split(";")[0]  # e.g. "Exceeds the limit (4300 digits) for integer..."


def _classify(document: Any) -> Detected:
    if isinstance(document, dict):
        if "resourceType" in document:
            return Detected("fhir", document)
        lists = document.get("data", document)
        if isinstance(lists, dict) and any(isinstance(lists.get(k), list) for k in DOCTOLIB_LISTS):
            return Detected("doctolib", lists)
        if isinstance(lists, dict) and "visit_motives" in lists:
            raise FormatError(
                "is a Doctolib booking page, not the list of your appointments"
                " (account/appointments.json)"
            )
    raise FormatError(
        f"is JSON ({_shape(document)}) but neither FHIR (no resourceType)"
        " nor a Doctolib appointments document (no confirmed/done lists)"
    )


def _shape(document: Any) -> str:
    if isinstance(document, dict):
        keys = ", ".join(sorted(str(k) for k in document)[:4])
        return f"an object with keys {keys}" if keys else "an empty object"
    if isinstance(document, list):
        return f"a list of {len(document)} items"
    return f"a single {type(document).__name__}"
