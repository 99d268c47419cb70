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
from carnet.relay.serve import serve
from carnet.relay.storage.base import Stats, StorageError
from carnet.relay.storage.sqlite import SqliteStorage
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
    help="Data directory (default: $STATE_DIRECTORY).",
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
@_config_option
@click.option("--log-level", type=click.Choice(settings.LOG_LEVELS, case_sensitive=False))
def serve_command(
    listen: str | None, data: Path | None, config_path: Path | None, log_level: str | None
) -> None:
    """Serve the relay API until SIGTERM or SIGINT."""
    config = _load(config_path, listen=listen, data=data, log_level=log_level)
    setup_logging(config.log_level_number)
    try:
        asyncio.run(serve(config))
    except InvalidConfig as exc:
        _fail(str(exc), EX_CONFIG)
    except (CarnetError, StorageError) as exc:
        _fail(str(exc))


async def _read_stats(data: Path) -> Stats:
    storage = SqliteStorage.open_readonly(data)
    try:
        return await storage.stats()
    finally:
        await storage.close()


@cli.command("stats")
@_data_option
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def stats_command(data: Path | None, config_path: Path | None, as_json: bool) -> None:
    """Print aggregate counts: mailboxes, entries, bytes (nothing per mailbox)."""
    config = _load(config_path, data=data)
    try:
        stats = asyncio.run(_read_stats(config.data))
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
