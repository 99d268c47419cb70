"""Commands that move appointments in and out of files: import and export."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from carnet.cli.context import open_device
from carnet.daemon import importing
from carnet.daemon.sharing.incoming import shared_records
from carnet.daemon.store import ImportSummary, Store
from carnet.protocol.errors import ImportRejected, InvalidRecord, UsageError

# Below this many records a file imports faster than a progress bar can draw.
PROGRESS_FROM = 2 * importing.PROGRESS_STEP


def _reason(path: Path, exc: ImportRejected | InvalidRecord) -> str:
    """The rejection reason without the file name the formats module puts first."""
    detail = exc.detail or str(exc)
    return detail.removeprefix(f"{path.name}: ")


def _store(store: Store, path: Path, records: list[dict[str, object]]) -> ImportSummary:
    if len(records) < PROGRESS_FROM or not sys.stderr.isatty():
        return importing.store_records(store, records)
    with click.progressbar(length=len(records), label=path.name, file=sys.stderr) as bar:
        return importing.store_records(store, records, bar.update)


@click.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def import_(files: tuple[Path, ...]) -> None:
    """Import appointment files (FHIR R4 JSON or ndjson, iCalendar, Doctolib), each all or nothing.

    Importing a file again, or an appointment already imported from another
    file, updates it instead of adding a copy. Exits 1 if any file was rejected.
    """
    store = open_device().store
    rejected = 0
    for path in files:
        try:
            summary = _store(store, path, importing.parse(path))
        except (ImportRejected, InvalidRecord) as exc:
            click.echo(f"{path.name}: rejected: {_reason(path, exc)}")
            rejected += 1
            continue
        click.echo(importing.describe(path.name, summary))
    if rejected:
        click.get_current_context().exit(1)


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable by this user only (it is health data)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


@click.command()
@click.option(
    "--format", "fmt", type=click.Choice(["fhir", "ics"]), required=True, help="Output format."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (mode 0600) instead of standard output.",
)
@click.option("--patient", help="Export what this patient shared with you instead.")
def export(fmt: str, output: Path | None, patient: str | None) -> None:
    """Export every appointment as a FHIR R4 Bundle (JSON) or an iCalendar file."""
    # Here, not at the top: every `carnet` command loads this module, and the
    # formats (icalendar above all) would slow them all down.
    from carnet.daemon.formats import export_fhir, export_ics

    store = open_device().store
    records = shared_records(store, patient) if patient else store.list()
    if fmt == "fhir":
        data = json.dumps(export_fhir(records), indent=2, ensure_ascii=False).encode() + b"\n"
    else:
        data = export_ics(records)
    if output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        _write_private(output, data)
