"""Reusable output options and printers (``--json`` and human tables)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    """Add ``--json``: print machine-readable JSON instead of text."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


_CONTROL = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)], "\ufffd")
_CONTROL.update({0x09: " ", 0x0A: " "})


def shown(value: Any) -> str:
    """`value` as text for a terminal: control characters (escape sequences a
    contact could slip into a name or a note) are replaced, never interpreted."""
    return str(value).translate(_CONTROL)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    widths = {c: max(len(c), *(len(shown(r.get(c, ""))) for r in rows)) for c in columns}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        click.echo("  ".join(shown(row.get(c, "")).ljust(widths[c]) for c in columns).rstrip())


def print_record(record: dict[str, Any]) -> None:
    width = max(len(k) for k in record)
    for key, value in record.items():
        click.echo(f"{key.ljust(width)}  {shown(value)}")


def emit(value: Any, as_json: bool, text: Callable[[], None]) -> None:
    """Print `value` as JSON when asked, else with the `text` printer."""
    if as_json:
        print_json(value)
    else:
        text()


def plural(count: int, singular: str, many: str | None = None) -> str:
    return f"{count} {singular if count == 1 else many or singular + 's'}"
