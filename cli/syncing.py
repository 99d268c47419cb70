"""Commands about synchronisation: sync, compact and status."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from carnet.cli.context import open_device, passphrase_file_option, unlocked_device, with_relay
from carnet.cli.output import emit, json_option, plural, print_record
from carnet.daemon.carnetd.status import daemon_state
from carnet.daemon.sync import outbox
from carnet.daemon.sync.engine import SyncReport, sync_vault
from carnet.daemon.sync.relay_client import RelayClient


@click.command()
@json_option
@passphrase_file_option
def sync(as_json: bool, passphrase_file: Path | None) -> None:
    """Push local changes to the relay and pull the other devices' changes, once."""
    device = unlocked_device(passphrase_file)
    report = with_relay(device.config.relay, lambda client: sync_vault(device, client))
    emit(report.to_dict(), as_json, lambda: click.echo(describe(report)))


@click.command()
@json_option
@passphrase_file_option
def compact(as_json: bool, passphrase_file: Path | None) -> None:
    """Sync, then write a snapshot of this device's state and let the relay drop the
    history it covers (carnetd does this by itself as history grows)."""
    device = unlocked_device(passphrase_file)
    report = with_relay(
        device.config.relay, lambda client: sync_vault(device, client, snapshot_now=True)
    )
    emit(report.to_dict(), as_json, lambda: click.echo(describe_compaction(report)))


def describe_compaction(report: SyncReport) -> str:
    snapshot = f"Wrote a snapshot ({plural(report.snapshot_entries, 'entry', 'entries')})"
    if report.compacted:
        dropped = plural(report.compacted, "older entry", "older entries")
        return f"{snapshot}; the relay dropped {dropped}."
    return (
        f"{snapshot}; the relay kept the older entries, as another device wrote meanwhile or "
        "nothing was left to drop. A later snapshot will compact them."
    )


def describe(report: SyncReport) -> str:
    line = (
        f"Pushed {plural(report.sealed_ops, 'change')} "
        f"({plural(report.pushed_entries, 'entry', 'entries')}); "
        f"pulled {plural(report.applied_ops, 'change')} "
        f"({plural(report.pulled_entries, 'entry', 'entries')})."
    )
    shared = [
        (report.shared_entries_pushed, "shared entry", "shared entries", "sent"),
        (report.shared_entries_pulled, "shared entry", "shared entries", "received"),
        (report.invitations_received, "invitation", None, "received"),
        (report.notes_received, "practitioner note", None, "received"),
    ]
    said = [f"{plural(n, one, many)} {verb}" for n, one, many, verb in shared if n]
    return f"{line} Sharing: {', '.join(said)}." if said else line


async def _reachable(client: RelayClient) -> bool:
    try:
        return await asyncio.wait_for(client.health(), timeout=3)
    except TimeoutError:
        return False


def describe_daemon(daemon: dict[str, Any]) -> str:
    """carnetd's state in one line for people (`--json` has every field)."""
    if not daemon["running"]:
        return "not running"
    parts = [f"running (pid {daemon.get('pid')})"]
    if daemon.get("subscribed"):
        parts.append("live")
    if daemon.get("relay_reachable") is False:
        parts.append("relay unreachable, retrying")
    if daemon.get("last_sync_attempt"):
        parts.append(f"last attempt {daemon['last_sync_attempt']}: {daemon['last_sync_result']}")
    if daemon.get("last_error"):
        parts.append(str(daemon["last_error"]))
    return "; ".join(parts)


@click.command()
@json_option
def status(as_json: bool) -> None:
    """Show this device's state: daemon, relay, last sync, pending changes, alerts."""
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
        "daemon": daemon_state(device.paths),
    }
    emit(
        state, as_json, lambda: print_record({**state, "daemon": describe_daemon(state["daemon"])})
    )
