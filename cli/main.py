"""The `carnet` command: a thin click layer over ``carnet.daemon``.

Errors meant for people (``CarnetError``) are printed as one line on stderr,
exit code 1 (2 for usage errors); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from carnet.cli import contacts, importing, records, setup, sharing, syncing
from carnet.cli.forget import forget
from carnet.protocol.errors import CarnetError, UsageError


class CarnetGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CarnetError as exc:
            click.echo(f"carnet: {exc}", err=True)
            sys.exit(2 if isinstance(exc, UsageError) else 1)


@click.group(cls=CarnetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar="CARNET_HOME",
    help="Folder holding this device's state (default: XDG folders). Env: CARNET_HOME.",
)
@click.version_option(package_name="carnet")
def cli(home: str | None) -> None:
    """carnet: your medical appointments, end-to-end encrypted across your devices."""


for command in (
    setup.init,
    setup.device,
    records.add,
    records.list_,
    records.show,
    records.edit,
    records.cancel,
    records.delete,
    importing.import_,
    importing.export,
    syncing.sync,
    syncing.compact,
    syncing.status,
    forget,
    contacts.contact,
    contacts.pair,
    sharing.share,
    sharing.list_shares,
    sharing.narrow,
    sharing.revoke,
    sharing.patients,
    sharing.note,
    sharing.log,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="carnet")


if __name__ == "__main__":
    main()
