"""Patients' devices through the real device library (``carnet.daemon``), for relay tests."""

from __future__ import annotations

from pathlib import Path

from nacl.utils import random

from carnet.daemon.config import Config
from carnet.daemon.device import Device
from carnet.daemon.keys import Secrets
from carnet.daemon.paths import Paths
from carnet.daemon.sync.engine import SyncReport, sync_vault
from carnet.daemon.sync.relay_client import RelayClient


def new_device(root: Path, relay_url: str, like: Device | None = None) -> Device:
    """A device of a new patient, or, given `like`, another device of the same patient."""
    vault = like.unlock().vault_key if like is not None else random(32)
    config = Config(relay=relay_url, device_name=root.name)
    return Device.create(Paths(root, root), config, None, Secrets(random(32), vault))


def add(device: Device, *numbers: int) -> None:
    for n in numbers:
        device.store.add(
            {"practitioner": f"Dr {n}", "start": f"2027-03-{1 + n % 28:02d}T09:00:00+01:00"}
        )


def practitioners(device: Device) -> set[str]:
    return {record["practitioner"] for record in device.store.list()}


async def sync(device: Device, url: str) -> SyncReport:
    async with RelayClient(url) as relay:
        return await sync_vault(device, relay)
