"""Every appointment of the corpus survives carnet's own FHIR and iCalendar exports."""

from __future__ import annotations

import json
from pathlib import Path

from fhir.resources.R4B.bundle import Bundle

from carnet.daemon.formats import ParsedFile, export_fhir, export_ics, parse_file
from carnet.protocol.errors import ImportRejected


def test_corpus_round_trips_through_both_exports(
    corpus_results: dict[Path, ParsedFile | ImportRejected], tmp_path: Path
) -> None:
    checked = 0
    for path, result in corpus_results.items():
        if not isinstance(result, ParsedFile):
            continue
        bundle = export_fhir(result.records)
        Bundle.model_validate(bundle)
        as_fhir = tmp_path / "export.json"
        as_fhir.write_text(json.dumps(bundle))
        assert parse_file(as_fhir).records == result.records, path

        as_ics = tmp_path / "export.ics"
        as_ics.write_bytes(export_ics(result.records))
        assert parse_file(as_ics).records == result.records, path
        checked += len(result.records)
    assert checked > 5000
