"""Commands that set a device up: init (new identity or --join) and device management."""

from __future__ import annotations

import socket
from pathlib import Path

import click

from carnet.cli.context import (
    open_device,
    passphrase_file_option,
    paths,
    unlocked_device,
    with_relay,
)
from carnet.cli.output import emit, json_option, print_table
from carnet.daemon import join, passphrase
from carnet.daemon.config import Config
from carnet.daemon.device import Device
from carnet.daemon.sharing.vault_ops import log_device_added
from carnet.daemon.sync.engine import sync_vault
from carnet.daemon.sync.relay_client import RelayClient
from carnet.protocol.errors import AlreadyInitialised, UsageError


def _passphrase(no_passphrase: bool, passphrase_file: Path | None) -> bytes | None:
    if no_passphrase:
        if passphrase_file:
            raise UsageError("--no-passphrase and --passphrase-file exclude each other")
        return None
    secret = passphrase.resolve(passphrase_file, confirm=True)
    if secret is None:
        raise UsageError(
            "no passphrase given and no terminal to ask; use --passphrase-file F or --no-passphrase"
        )
    return secret


@click.command()
@click.option("--relay", required=True, help="URL of the relay, e.g. https://relay.example.")
@click.option("--name", default="", help="Your name, as people you share with will see it.")
@click.option("--device-name", default="", help="This device's name (default: host name).")
@click.option("--join", "code", help="Join an identity with a code from `carnet device invite`.")
@click.option(
    "--practitioner",
    is_flag=True,
    help="A practitioner's identity: it receives shares (needs --name).",
)
@click.option("--no-passphrase", is_flag=True, help="Protect keys by file permissions only.")
@passphrase_file_option
def init(
    relay: str,
    name: str,
    device_name: str,
    code: str | None,
    practitioner: bool,
    no_passphrase: bool,
    passphrase_file: Path | None,
) -> None:
    """Create this device's keys (a new identity, or a new device of yours with --join)."""
    where = paths()
    if where.keys.exists():
        raise AlreadyInitialised(f"({where.keys})")
    if practitioner and not name and not code:
        raise UsageError("a practitioner needs --name: patients see it on your card")
    config = Config(
        relay=relay.rstrip("/"),
        name=name,
        device_name=device_name or socket.gethostname(),
        role="practitioner" if practitioner else "patient",
    )
    config.check(where.config_file)
    secret = _passphrase(no_passphrase, passphrase_file)

    async def join_then_sync(client: RelayClient) -> Device:
        device = await join.accept(where, client, code or "", config, secret)
        await sync_vault(device, client)
        return device

    if code:
        device = with_relay(config.relay, join_then_sync)
        click.echo(f"Joined; this device has {device.store.count()} appointments.")
    else:
        # Works offline: the first sync registers the mailbox on the relay.
        device = Device.create(where, config, secret)
        click.echo(f"Initialised {where.data}; device {device.unlock().device_id}.")
    own = bytes(device.unlock().device.verify_key).hex()
    log_device_added(device.store, own, device.config.device_name)
    device.close()


@click.group()
def device() -> None:
    """Manage the devices of your identity."""


@device.command()
@passphrase_file_option
def invite(passphrase_file: Path | None) -> None:
    """Print a one-time code (last line) to run `carnet init --join CODE` on a new device."""
    dev = unlocked_device(passphrase_file)
    code = with_relay(dev.config.relay, lambda client: join.invite(dev, client))
    click.echo(f"On the new device, within {join.TTL_SECONDS // 60} minutes, run:", err=True)
    click.echo(f"  carnet init --relay {dev.config.relay} --join {code}", err=True)
    click.echo(code)


@device.command(name="list")
@json_option
def list_devices(as_json: bool) -> None:
    """List the devices of your identity."""
    dev = open_device()
    own = dev.store.device_id
    rows = [{**d, "this": d["device"].startswith(own)} for d in dev.store.devices()]
    emit(rows, as_json, lambda: print_table(rows, ("name", "device", "added", "this")))
