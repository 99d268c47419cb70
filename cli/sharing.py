"""Commands about sharing: share, shares, narrow, revoke; patients and note (practitioners); log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from carnet.cli.contacts import seconds
from carnet.cli.context import open_device, passphrase_file_option, unlocked_device, with_relay
from carnet.cli.output import emit, json_option, print_table
from carnet.daemon.device import Device
from carnet.daemon.sharing import audit, incoming, notes, shares
from carnet.daemon.sharing.relays import relay_pool
from carnet.daemon.sharing.scope import Scope
from carnet.daemon.sync.engine import sync_vault
from carnet.daemon.sync.relay_client import RelayClient
from carnet.protocol.errors import AuditChainBroken, RelayError, UsageError

SHARE_COLUMNS = ("id", "alias", "scope", "created", "expires", "state", "records")
COPIES_STAY = "Copies the doctor already downloaded stay with the doctor."


def scope_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The filters of a scope: --practitioner, --specialty, --since, --until, --id."""
    options = [
        click.option("--practitioner", "practitioners", multiple=True, help="Practitioner name."),
        click.option("--specialty", "specialties", multiple=True, help="Specialty."),
        click.option("--since", default="", help="First day, e.g. 2024-01-01 (inclusive)."),
        click.option("--until", default="", help="Last day (inclusive)."),
        click.option("--id", "ids", multiple=True, help="One record's id (repeat for more)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _sync_after(device: Device, work: Callable[[RelayClient], Any] | None = None) -> Any:
    """Run `work` with the relay, then one sync round so the change goes out now."""

    async def run(client: RelayClient) -> Any:
        result = await work(client) if work else None
        await sync_vault(device, client)
        return result

    return with_relay(device.config.relay, run)


def _short(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "id": row["id"][:8]}


@click.command()
@click.argument("alias")
@click.option("--all", "everything", is_flag=True, help="Share every record.")
@scope_options
@click.option("--expires", default="30d", show_default=True, help="Lifetime, e.g. 2h, 7d.")
@click.option("--allow-notes", is_flag=True, help="Let the practitioner send notes back.")
@json_option
@passphrase_file_option
def share(
    alias: str,
    everything: bool,
    practitioners: tuple[str, ...],
    specialties: tuple[str, ...],
    since: str,
    until: str,
    ids: tuple[str, ...],
    expires: str,
    allow_notes: bool,
    as_json: bool,
    passphrase_file: Path | None,
) -> None:
    """Share the records in scope with a pinned practitioner, for a limited time.

    Records added later that match follow automatically, from any of your
    devices, until the share expires or you revoke it.
    """
    scope = Scope.build(everything, practitioners, specialties, since, until, ids)
    lifetime = seconds("--expires", expires)
    device = unlocked_device(passphrase_file)

    async def make(client: RelayClient) -> shares.Share:
        return await shares.create(device, client, alias, scope, lifetime, allow_notes)

    made = shares.load(device.store, _sync_after(device, make).id).to_dict(device.store)
    emit(
        made,
        as_json,
        lambda: click.echo(
            f"Shared {made['records']} records ({made['scope']}) with {alias} until "
            f"{made['expires']}; share {made['id'][:8]}."
        ),
    )


@click.command(name="shares")
@json_option
def list_shares(as_json: bool) -> None:
    """List the shares you made, active and past."""
    store = open_device().store
    rows = [s.to_dict(store) for s in shares.all_shares(store)]
    emit(rows, as_json, lambda: print_table([_short(r) for r in rows], SHARE_COLUMNS))


def _one(device: Device, target: str) -> shares.Share:
    found = shares.resolve(device.store, target)
    if len(found) > 1:
        ids = ", ".join(s.id[:8] for s in found)
        raise UsageError(f"{target!r} has several active shares ({ids}); give a share id")
    return found[0]


@click.command()
@click.argument("target", metavar="ALIAS|SHARE_ID")
@scope_options
@passphrase_file_option
def narrow(
    target: str,
    practitioners: tuple[str, ...],
    specialties: tuple[str, ...],
    since: str,
    until: str,
    ids: tuple[str, ...],
    passphrase_file: Path | None,
) -> None:
    """Take records out of an active share: keep only those also matching these filters."""
    device = unlocked_device(passphrase_file)
    extra = Scope.build(False, practitioners, specialties, since, until, ids)
    narrowed = shares.narrow(device.store, _one(device, target), extra)

    _sync_after(device)
    row = shares.load(device.store, narrowed.id).to_dict(device.store)
    click.echo(f"Share {row['id'][:8]} now covers {row['scope']}: {row['records']} records.")


@click.command()
@click.argument("target", metavar="ALIAS|SHARE_ID")
@passphrase_file_option
def revoke(target: str, passphrase_file: Path | None) -> None:
    """Revoke a share (or every active share with a contact) at once, on all your devices."""
    device = unlocked_device(passphrase_file)
    secrets = device.unlock()
    revoked = [shares.mark_revoked(device.store, s) for s in shares.resolve(device.store, target)]

    async def erase(client: RelayClient) -> None:
        async with relay_pool(client) as relays:  # a share lives on the relay it was made on
            for gone in revoked:
                await shares.erase(device.store, relays.get(gone.relay), secrets, gone)

    names = ", ".join(f"{s.id[:8]} with {s.alias}" for s in revoked)
    try:
        _sync_after(device, erase)
    except RelayError:
        click.echo(f"Revoked {names} on this device; the relay will be told at the next sync.")
        click.echo(COPIES_STAY)
        raise
    click.echo(f"Revoked {names}; its mailboxes are erased from the relay.")
    click.echo(COPIES_STAY)


@click.command()
@json_option
def patients(as_json: bool) -> None:
    """List the patients who shared records with you (practitioners)."""
    rows = incoming.patients(open_device().store)
    emit(rows, as_json, lambda: print_table(rows, ("alias", "name", "shares", "active", "records")))


@click.command()
@click.argument("record_id")
@click.argument("text")
@passphrase_file_option
def note(record_id: str, text: str, passphrase_file: Path | None) -> None:
    """Send a note on a record a patient shared with you (if they allowed notes)."""
    device = unlocked_device(passphrase_file)

    async def send(client: RelayClient) -> incoming.IncomingShare:
        async with relay_pool(client) as relays:
            return await notes.write(device.store, relays, device.unlock(), record_id, text)

    sent = with_relay(device.config.relay, send)
    click.echo(f"Note sent to {sent.alias}.")


@click.command(name="log")
@json_option
def log(as_json: bool) -> None:
    """Show the audit log (shares, notes, devices, key changes, refusals) and check its chain."""
    store = open_device().store
    rows = [event.to_dict() for event in audit.events(store)]
    broken = audit.verify(store)
    result = {"events": rows, "chain_intact": broken is None, "broken_at": broken}

    def text() -> None:
        print_table(rows, ("at", "kind", "detail"))
        if broken is None:
            click.echo(f"Hash chain verified ({len(rows)} events).")

    emit(result, as_json, text)
    if broken is not None:
        raise AuditChainBroken(f"event {broken} does not follow the event before it")
