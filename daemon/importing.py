"""Importing one appointment file into the store: the pipeline `carnet import` and
carnetd's inbox share.

A file is parsed whole first (``formats.parse_file``), then stored in one
transaction: a file is imported entirely or not at all, and records already
known by their ``source`` update instead of duplicating.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from carnet.daemon.store import ImportSummary, Store

# Records stored per step when someone watches progress; the steps share one
# transaction, so this only sets how often the progress callback runs.
PROGRESS_STEP = 250

Progress = Callable[[int], None]


def parse(path: Path) -> list[dict[str, Any]]:
    """The validated records of the file at `path`, or ImportRejected (one line)."""
    # Imported lazily: the parsers (icalendar above all) weigh more than the rest of
    # carnetd together, and an idle daemon should not carry them before a file arrives.
    from carnet.daemon.formats import parse_file

    # Parser warnings quote the file (time zone names, values); they are not for the
    # log, which never carries record contents, and the verdict is the exception.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return parse_file(path).records


def store_records(
    store: Store, records: list[dict[str, Any]], progress: Progress | None = None
) -> ImportSummary:
    """Store `records` in one transaction; `progress(n)` after each step of n records."""
    if progress is None:
        return store.import_records(records)
    added = updated = unchanged = 0
    with store.transaction():
        for start in range(0, len(records), PROGRESS_STEP):
            step = records[start : start + PROGRESS_STEP]
            summary = store.import_records(step)  # nested: the outer transaction commits
            added += summary.added
            updated += summary.updated
            unchanged += summary.unchanged
            progress(len(step))
    return ImportSummary(added, updated, unchanged)


def import_file(store: Store, path: Path) -> ImportSummary:
    return store_records(store, parse(path))


def describe(name: str, summary: ImportSummary) -> str:
    """The per-file summary line both the CLI and the daemon's log use."""
    return (
        f"{name}: {summary.added} added, {summary.updated} updated, {summary.unchanged} unchanged"
    )
