"""What every command needs: the device of ``--home``/CARNET_HOME, unlocked on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from carnet.daemon import passphrase
from carnet.daemon.carnetd.control import poke
from carnet.daemon.device import Device
from carnet.daemon.paths import Paths
from carnet.daemon.sync.relay_client import RelayClient

T = TypeVar("T")


def paths() -> Paths:
    return Paths.resolve(click.get_current_context().find_root().params.get("home"))


def open_device() -> Device:
    ctx = click.get_current_context()
    device = Device.open(paths())
    written = device.store.conn.total_changes

    def close() -> None:
        changed = device.store.conn.total_changes != written
        device.close()
        if changed:  # after the commit: a running carnetd pushes the change at once
            poke(device.paths)

    ctx.call_on_close(close)
    return device


def unlocked_device(passphrase_file: Path | None = None) -> Device:
    device = open_device()
    device.unlock(passphrase.required(passphrase_file) if device.sealed else None)
    return device


def with_relay(url: str, work: Callable[[RelayClient], Awaitable[T]]) -> T:
    async def run() -> T:
        async with RelayClient(url) as relay:
            return await work(relay)

    return asyncio.run(run())


def passphrase_file_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--passphrase-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Read the key file's passphrase from this file.",
    )(func)
