"""What a snapshot costs and what compaction saves, through a local relay.

    python -m bench compaction [RECORDS] [EDITS]

Device A holds RECORDS records (default 10,000), then makes EDITS single
edits (default 2,000), each synced on its own as carnetd would: one entry
each. We time a fresh device reading that whole history, A's round that
writes a snapshot and compacts (`carnet compact`), and a fresh device reading
what is left; and we count the entries and bytes the relay keeps for the vault.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from nacl.utils import random

from bench.sync import make_device, sample
from carnet.daemon.device import Device
from carnet.daemon.keys import Secrets
from carnet.daemon.sync import snapshot
from carnet.daemon.sync.engine import SyncReport, sync_vault
from carnet.daemon.sync.relay_client import RelayClient
from carnet.relay.process import RelayProcess, start_relay


async def rounds(device: Device, url: str, count: int, snapshot_now: bool = False) -> SyncReport:
    async with RelayClient(url) as relay:
        report = await sync_vault(device, relay, snapshot_now=snapshot_now)
        for _ in range(count - 1):
            report = await sync_vault(device, relay, snapshot_now=snapshot_now)
        return report


def timed(device: Device, url: str, snapshot_now: bool = False) -> tuple[float, SyncReport]:
    started = time.perf_counter()
    report = asyncio.run(rounds(device, url, 1, snapshot_now))
    return time.perf_counter() - started, report


def stored(relay: RelayProcess) -> tuple[int, int]:
    """Entries and bytes of the biggest mailbox (the vault) on the relay."""
    db = sqlite3.connect(next(relay.data_dir.glob("*.sqlite3")))
    try:
        row = db.execute(
            "SELECT count(*), sum(length(data)) FROM entries GROUP BY mailbox "
            "ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        return int(row[0]), int(row[1])
    finally:
        db.close()


def main(argv: list[str]) -> int:
    records = int(argv[0]) if argv else 10_000
    edits = int(argv[1]) if len(argv) > 1 else 2_000
    with tempfile.TemporaryDirectory() as tmp, start_relay(Path(tmp) / "relay") as relay:
        root = Path(tmp)
        secrets = Secrets.generate()

        def fresh(name: str) -> Device:
            return make_device(root / name, relay.url, Secrets(random(32), secrets.vault_key))

        a = make_device(root / "a", relay.url, secrets)
        a.store.import_records(sample(i) for i in range(records))
        timed(a, relay.url)
        ids = [r["id"] for r in a.store.list()]

        async def edit_rounds() -> None:
            async with RelayClient(relay.url) as client:
                for i in range(edits):
                    a.store.edit(ids[i % len(ids)], {"notes": f"edit {i}"})
                    await sync_vault(a, client)

        started = time.perf_counter()
        automatic = snapshot.SNAPSHOT_AFTER
        # No automatic snapshot (by A, or by B when it reads) until the one measured.
        snapshot.SNAPSHOT_AFTER = 10**9
        asyncio.run(edit_rounds())
        print(
            f"history: {records:,} records, then {edits:,} edit rounds "
            f"({time.perf_counter() - started:.1f} s)"
        )
        entries, size = stored(relay)
        print(f"relay keeps before: {entries:,} entries, {size / 2**20:.1f} MiB")
        join_s, joined = timed(fresh("b"), relay.url)
        print(f"fresh device reads the history: {join_s:.2f} s, {joined.pulled_entries:,} entries")

        snapshot.SNAPSHOT_AFTER = automatic
        snap_s, snap = timed(a, relay.url, snapshot_now=True)
        print(
            f"snapshot round: {snap_s:.2f} s, {snap.snapshot_entries} entries written, "
            f"{snap.compacted:,} dropped by the relay"
        )
        entries, size = stored(relay)
        print(f"relay keeps after: {entries:,} entries, {size / 2**20:.1f} MiB")
        c = fresh("c")
        join_s, joined = timed(c, relay.url)
        print(f"fresh device reads the snapshot: {join_s:.2f} s, {joined.pulled_entries:,} entries")
        assert c.store.list() == a.store.list()
    return 0
