"""Push and pull throughput of N records through a local relay (default 10,000).

    python -m bench sync [N]

Device A holds N new records (queued, as after `carnet add`); we time A's sync
(seal + push) and then B's sync (pull + verify + apply), both against a real
`carnet-relay` subprocess on its embedded SQLite store.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from nacl.utils import random

from carnet.daemon.config import Config
from carnet.daemon.device import Device
from carnet.daemon.keys import Secrets
from carnet.daemon.paths import Paths
from carnet.daemon.sync.engine import SyncReport, sync_vault
from carnet.daemon.sync.relay_client import RelayClient
from carnet.relay.process import start_relay

SPECIALTIES = ("cardiology", "dermatology", "ophthalmology", "general practice", "dentistry")


def make_device(root: Path, relay: str, secrets: Secrets) -> Device:
    paths = Paths(root, root)
    return Device.create(paths, Config(relay=relay, device_name=root.name), None, secrets)


def sample(i: int) -> dict[str, str]:
    return {
        "practitioner": f"Dr Practitioner {i}",
        "practitioner_id": f"rpps:{10_000_000_000 + i}",
        "start": f"2027-{1 + i % 12:02d}-{1 + i % 28:02d}T{8 + i % 10:02d}:30:00+01:00",
        "specialty": SPECIALTIES[i % len(SPECIALTIES)],
        "location": "12 rue de la Santé, 75013 Paris",
        "reason": f"Follow-up visit number {i}",
        "notes": "Bring previous results and the prescription." if i % 2 else "",
        "source": f"bench:{i}",
    }


async def timed_sync(device: Device, url: str) -> tuple[float, SyncReport]:
    async with RelayClient(url) as relay:
        started = time.perf_counter()
        report = await sync_vault(device, relay)
        return time.perf_counter() - started, report


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 10_000
    with tempfile.TemporaryDirectory() as tmp, start_relay(Path(tmp) / "relay") as relay:
        a_secrets = Secrets.generate()
        a = make_device(Path(tmp) / "a", relay.url, a_secrets)
        b = make_device(Path(tmp) / "b", relay.url, Secrets(random(32), a_secrets.vault_key))
        a.store.import_records(sample(i) for i in range(count))
        push_s, pushed = asyncio.run(timed_sync(a, relay.url))
        pull_s, pulled = asyncio.run(timed_sync(b, relay.url))
        assert b.store.count() == count, (b.store.count(), count)
        assert a.store.list() == b.store.list()
        print(f"records: {count}")
        print(
            f"push: {push_s:.3f} s, {count / push_s:,.0f} records/s "
            f"({pushed.pushed_entries} entries)"
        )
        print(
            f"pull: {pull_s:.3f} s, {count / pull_s:,.0f} records/s "
            f"({pulled.pulled_entries} entries)"
        )
        idle_s, _ = asyncio.run(timed_sync(b, relay.url))
        print(f"sync with no change: {idle_s * 1000:.1f} ms")
    return 0
