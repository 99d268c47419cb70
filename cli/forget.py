"""`carnet forget`: the right to erasure, for everything this identity keeps on the relay."""

from __future__ import annotations

from pathlib import Path

import click

from carnet.cli.context import passphrase_file_option, unlocked_device, with_relay
from carnet.cli.output import emit, json_option, plural
from carnet.daemon.forget import forget as erase
from carnet.daemon.forget import owned_mailboxes


@click.command()
@click.option("--yes", is_flag=True, help="Erase without asking for confirmation.")
@json_option
@passphrase_file_option
def forget(yes: bool, as_json: bool, passphrase_file: Path | None) -> None:
    """Erase everything your identity stores on the relay; local copies stay."""
    device = unlocked_device(passphrase_file)
    relay = device.config.relay
    mailboxes = owned_mailboxes(device)
    if not yes:
        click.confirm(
            f"Erase from {relay} every mailbox of your identity "
            f"({plural(len(mailboxes), 'mailbox', 'mailboxes')}: your synced appointments"
            " and everything you share)? This cannot be undone",
            default=False,
            abort=True,
            err=True,
        )
    report = with_relay(relay, lambda client: erase(client, mailboxes))
    emit(
        report.to_dict(),
        as_json,
        lambda: click.echo(
            f"Erased {plural(report.erased, 'mailbox', 'mailboxes')} from {relay}"
            f" (your vault and {plural(report.shared, 'shared mailbox', 'shared mailboxes')};"
            f" {report.already_gone} already gone). The appointments on this device and on"
            " your other devices remain there; a device that syncs again stores its changes"
            " on the relay anew, so run `carnet forget` last, or stop syncing first."
        ),
    )
