"""Commands on appointment records: add, list, show, edit, cancel, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from carnet.cli.context import open_device
from carnet.cli.output import emit, json_option, print_record, print_table
from carnet.daemon.records import STATUSES
from carnet.daemon.sharing import incoming, notes

# (option, field, help) for every field a person may set.
FIELD_OPTIONS = (
    ("--practitioner", "practitioner", "Practitioner's name."),
    ("--practitioner-id", "practitioner_id", "Practitioner identifier, e.g. an RPPS number."),
    ("--start", "start", "Start, ISO 8601 with time zone, e.g. 2026-12-01T09:30+01:00."),
    ("--end", "end", "End, ISO 8601 with time zone (default: 30 minutes after start)."),
    ("--specialty", "specialty", "Specialty, e.g. cardiology."),
    ("--location", "location", "Where the appointment takes place."),
    ("--reason", "reason", "Reason for the visit."),
    ("--notes", "notes", "Your own notes."),
    ("--patient-instruction", "patient_instruction", "Instructions to follow before it."),
)
LIST_COLUMNS = ("start", "status", "practitioner", "specialty", "id")


def field_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--status", type=click.Choice(STATUSES), help="FHIR appointment status.")(
        func
    )
    for option, name, text in reversed(FIELD_OPTIONS):
        func = click.option(option, name, help=text)(func)
    return func


def given(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


@click.command()
@field_options
def add(**fields: Any) -> None:
    """Add an appointment; prints its new id."""
    record = open_device().store.add(given(fields))
    click.echo(record["id"])


@click.command(name="list")
@click.option("--patient", help="Only the records this patient shared with you.")
@json_option
def list_(patient: str | None, as_json: bool) -> None:
    """List appointments, earliest first; a practitioner's include those shared with them."""
    device = open_device()
    practitioner = device.config.role == "practitioner"
    records = incoming.listing(device.store, patient, practitioner)
    columns = (*LIST_COLUMNS, "patient") if patient or practitioner else LIST_COLUMNS
    emit(records, as_json, lambda: print_table(records, columns))


@click.command()
@click.argument("record_id")
@json_option
def show(record_id: str, as_json: bool) -> None:
    """Show one appointment, with the notes practitioners sent on it."""
    store = open_device().store
    record = {**store.get(record_id), "practitioner_notes": notes.notes_for(store, record_id)}

    def text() -> None:
        print_record({k: v for k, v in record.items() if k != "practitioner_notes"})
        for written in record["practitioner_notes"]:
            click.echo(f"note from {written['author']} ({written['at']}): {written['text']}")

    emit(record, as_json, text)


@click.command()
@click.argument("record_id")
@field_options
def edit(record_id: str, **fields: Any) -> None:
    """Change fields of an appointment."""
    changes = given(fields)
    if not changes:
        raise click.UsageError("give at least one field to change, e.g. --notes TEXT")
    open_device().store.edit(record_id, changes)


@click.command()
@click.argument("record_id")
def cancel(record_id: str) -> None:
    """Mark an appointment as cancelled."""
    open_device().store.edit(record_id, {"status": "cancelled"})


@click.command()
@click.argument("record_id")
def delete(record_id: str) -> None:
    """Delete an appointment on all your devices."""
    open_device().store.delete(record_id)
