"""Commands about synchronisation: sync and status."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from carnet.cli.context import open_device, passphrase_file_option, unlocked_device, with_relay
from carnet.cli.output import emit, json_option, print_record
from carnet.daemon.sync import outbox
from carnet.daemon.sync.engine import sync_vault
from carnet.daemon.sync.relay_client import RelayClient


@click.command()
@json_option
@passphrase_file_option
def sync(as_json: bool, passphrase_file: Path | None) -> None:
    """Push local changes to the relay and pull the other devices' changes, once."""
    device = unlocked_device(passphrase_file)
    report = with_relay(device.config.relay, lambda client: sync_vault(device, client))
    emit(
        report.to_dict(),
        as_json,
        lambda: click.echo(
            f"Pushed {report.sealed_ops} changes ({report.pushed_entries} entries); "
            f"pulled {report.applied_ops} changes ({report.pulled_entries} entries)."
        ),
    )


async def _reachable(client: RelayClient) -> bool:
    try:
        return await asyncio.wait_for(client.health(), timeout=3)
    except TimeoutError:
        return False


@click.command()
@json_option
def status(as_json: bool) -> None:
    """Show this device's state: relay, last sync, pending changes, alerts."""
    device = open_device()
    store = device.store
    state: dict[str, Any] = {
        "device": store.device_id,
        "device_name": device.config.device_name,
        "relay": device.config.relay,
        "relay_reachable": with_relay(device.config.relay, _reachable),
        "records": store.count(),
        "pending": outbox.pending_count(store),
        "last_sync": store.get_meta("last_sync"),
        "alerts": store.alerts(),
    }
    emit(state, as_json, lambda: print_record(state))
