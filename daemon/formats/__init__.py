"""Appointment files in and out: FHIR R4 JSON, iCalendar and Doctolib.

``parse_file(path)`` recognises the format from the content (``detect``) and returns
every appointment in the file as a record dict ready to store, or raises
``ImportRejected("NAME: reason")``: a file is imported whole or not at all, and
garbage of any kind (binary, empty, truncated, huge) is a rejection, never a crash.

``export_fhir(records)`` and ``export_ics(records)`` write records out so that other
tools read them and carnet reads them back to identical records.

The mapping of each format is documented in its module: ``fhir``, ``ics``,
``doctolib`` (import), ``fhir_export``, ``ics_export``.
"""

from __future__ import annotations

from pathlib import Path

from carnet.daemon.formats import detect, doctolib, fhir, ics
from carnet.daemon.formats.common import FormatError, ParsedFile, one_line
from carnet.daemon.formats.fhir_export import export_fhir
from carnet.daemon.formats.ics_export import export_ics
from carnet.protocol.errors import ImportRejected

__all__ = ["ParsedFile", "export_fhir", "export_ics", "parse_file"]


def parse_file(path: Path) -> ParsedFile:
    """Every appointment in the file at ``path``, or ImportRejected naming the problem."""
    try:
        found = detect.detect(detect.read_limited(path))
        if found.kind == "ics":
            return ics.parse(found.content)
        if found.kind == "fhir":
            return fhir.parse_document(found.content)
        if found.kind == "fhir-ndjson":
            return fhir.parse_ndjson(found.content)
        return doctolib.parse(found.content)
    except FormatError as error:
        raise ImportRejected(f"{path.name or path}: {one_line(str(error))}") from None
