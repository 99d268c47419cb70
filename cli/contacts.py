"""Commands about contacts: your card, pinning others' (by card or by pairing in person)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from carnet.cli.context import open_device, passphrase_file_option, unlocked_device, with_relay
from carnet.cli.output import emit, json_option, print_table
from carnet.daemon.config import parse_duration
from carnet.daemon.keys import Secrets
from carnet.daemon.sharing import contacts, pairing
from carnet.daemon.sharing.cards import Card, intro_mailbox, own_card
from carnet.daemon.sync.relay_client import RelayClient
from carnet.protocol.errors import InvalidConfig, RelayError, UsageError

COMPARE = "Compare this fingerprint with the one `carnet contact` shows on their side."


async def _open_intro(client: RelayClient, secrets: Secrets) -> None:
    # A practitioner's introduction mailbox should exist before anyone holds the
    # card: whoever creates it first chooses its read key (see the threat model).
    with contextlib.suppress(RelayError):
        await client.create(intro_mailbox(secrets))


@click.group(invoke_without_command=True)
@json_option
@passphrase_file_option
@click.pass_context
def contact(ctx: click.Context, as_json: bool, passphrase_file: Path | None) -> None:
    """Print your contact card (one line, to give) and its fingerprint; or manage contacts."""
    if ctx.invoked_subcommand is not None:
        return
    device = unlocked_device(passphrase_file)
    secrets = device.unlock()
    card = own_card(secrets, device.config)
    if device.config.role == "practitioner":
        with_relay(device.config.relay, lambda client: _open_intro(client, secrets))
    shown = {
        "card": card.encode(),
        "fingerprint": card.fingerprint,
        "name": card.name,
        "role": card.role,
    }
    emit(shown, as_json, lambda: click.echo(f"{shown['card']}\nfingerprint: {card.fingerprint}"))


def _describe(pinned: contacts.Contact) -> str:
    card = pinned.card
    name = card.name or "(no name)"
    return f"{pinned.alias}: {name} ({card.role}), fingerprint {card.fingerprint}"


@contact.command(name="add")
@click.argument("card")
@click.option("--name", "alias", required=True, help="Your name for this contact (an alias).")
def add(card: str, alias: str) -> None:
    """Pin a contact's card; prints the fingerprint to compare with them."""
    pinned = contacts.pin(open_device().store, Card.decode(card), alias)
    click.echo(f"Pinned {_describe(pinned)}")
    click.echo(COMPARE, err=True)


@contact.command()
@click.argument("alias")
@click.option("--card", required=True, help="The contact's new card.")
def accept(alias: str, card: str) -> None:
    """Accept new keys for a pinned contact, after checking the new fingerprint with them."""
    pinned = contacts.accept(open_device().store, alias, Card.decode(card))
    click.echo(f"Now pinned: {_describe(pinned)}")


@contact.command(name="list")
@json_option
def list_contacts(as_json: bool) -> None:
    """List pinned contacts."""
    rows = [c.to_dict() for c in contacts.all_contacts(open_device().store)]
    emit(rows, as_json, lambda: print_table(rows, ("alias", "name", "role", "fingerprint")))


def seconds(option: str, text: str) -> int:
    """A duration option (e.g. 10m, 2h, 30d) in seconds, or a usage error naming it."""
    try:
        return parse_duration(text)
    except InvalidConfig as exc:
        raise UsageError(f"{option}: {exc.detail}") from None


@click.command()
@click.argument("code", required=False)
@click.option("--name", "alias", required=True, help="Your name for the other side (an alias).")
@click.option("--timeout", default="10m", show_default=True, help="How long to wait.")
@json_option
@passphrase_file_option
def pair(
    code: str | None, alias: str, timeout: str, as_json: bool, passphrase_file: Path | None
) -> None:
    """Pin each other's card in person: show a one-time code, or type the other side's CODE.

    Without CODE, prints the code as the first line of output and waits for the
    other side to run `carnet pair CODE`. Both sides then show the same words.
    """
    wait = seconds("--timeout", timeout)
    device = unlocked_device(passphrase_file)

    def announce(text: str) -> None:
        click.echo(text)
        sys.stdout.flush()
        click.echo("Waiting for the other side to run: carnet pair CODE --name ALIAS", err=True)

    async def run(client: RelayClient) -> pairing.Paired:
        if code is None:
            return await pairing.show(device, client, alias, announce, wait)
        return await pairing.join(device, client, code, alias, wait)

    paired = with_relay(device.config.relay, run)
    result = {**paired.contact.to_dict(), "confirmation": paired.confirmation}
    emit(
        result,
        as_json,
        lambda: click.echo(
            f"Paired: {_describe(paired.contact)}\n"
            f"Both sides must show the same words: {paired.confirmation}"
        ),
    )
