"""``carnet-relay``: serve the blind relay, or print its aggregate statistics."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import click

from carnet.protocol.errors import CarnetError, InvalidConfig
from carnet.relay import config as settings
from carnet.relay.serve import open_storage, serve
from carnet.relay.storage.base import Stats, StorageError
from carnet.service.systemd import setup_logging

EX_CONFIG = 78  # sysexits.h; the unit's RestartPreventExitStatus= stops restart loops on it

_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML settings (default: $CONFIGURATION_DIRECTORY/relay.toml).",
)
_data_option = click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    help="SQLite data directory (default: $STATE_DIRECTORY).",
)
_database_option = click.option(
    "--database",
    help="postgresql://… URL: use PostgreSQL (shared by several relays) instead of SQLite.",
)


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"carnet-relay: {message}", err=True)
    sys.exit(code)


def _load(config_path: Path | None, **flags: object) -> settings.RelayConfig:
    try:
        return settings.resolve(settings.read_file(config_path, os.environ), flags)
    except InvalidConfig as exc:
        _fail(str(exc), EX_CONFIG)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """The carnet blind relay: stores and forwards padded ciphertext, nothing else."""


@cli.command("serve")
@click.option("--listen", help=f"HOST:PORT to listen on (default {settings.DEFAULT_LISTEN}).")
@_data_option
@_database_option
@_config_option
@click.option("--log-level", type=click.Choice(settings.LOG_LEVELS, case_sensitive=False))
@click.option("--database-pool", type=int, help="PostgreSQL connections of this relay (10).")
@click.option("--rate-per-address", type=float, help="Requests/s per client address (0: off).")
@click.option("--burst-per-address", type=int, help="Requests a client address may save up.")
@click.option("--rate-per-connection", type=float, help="Requests/s per connection (0: off).")
@click.option("--burst-per-connection", type=int, help="Requests a connection may save up.")
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    help="Address or network of a reverse proxy whose X-Forwarded-For to believe (repeatable).",
)
@click.option("--max-entry-bytes", type=int, help="Largest entry accepted (protocol maximum).")
@click.option("--max-batch-entries", type=int, help="Most entries in one append (64).")
@click.option("--mailbox-max-entries", type=int, help="Entries a mailbox may keep (0: no quota).")
@click.option("--mailbox-max-bytes", type=int, help="Bytes a mailbox may keep (0: no quota).")
def serve_command(
    config_path: Path | None, trusted_proxies: tuple[str, ...], **flags: object
) -> None:
    """Serve the relay API until SIGTERM or SIGINT."""
    config = _load(config_path, trusted_proxies=list(trusted_proxies) or None, **flags)
    setup_logging(config.log_level_number)
    try:
        asyncio.run(serve(config))
    except InvalidConfig as exc:
        _fail(str(exc), EX_CONFIG)
    except (CarnetError, StorageError) as exc:
        _fail(str(exc))


async def _read_stats(config: settings.RelayConfig) -> Stats:
    storage = await open_storage(config, read_only=True)
    try:
        return await storage.stats()
    finally:
        await storage.close()


@cli.command("stats")
@_data_option
@_database_option
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def stats_command(
    data: Path | None, database: str | None, config_path: Path | None, as_json: bool
) -> None:
    """Print aggregate counts: mailboxes, entries, bytes (nothing per mailbox).

    The same totals as /metrics' carnet_relay_mailboxes, _entries and _stored_bytes.
    """
    config = _load(config_path, data=data, database=database)
    try:
        stats = asyncio.run(_read_stats(config))
    except (StorageError, OSError) as exc:
        _fail(str(exc))
    counts = {"mailboxes": stats.mailboxes, "entries": stats.entries, "bytes": stats.bytes}
    if as_json:
        click.echo(json.dumps(counts))
    else:
        for name, value in counts.items():
            click.echo(f"{name}: {value}")


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="carnet-relay")


if __name__ == "__main__":
    main()
