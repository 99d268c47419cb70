"""One sync round of a device: seal queued operations, push, pull, then sharing.

Rounds are serialised across processes (the CLI and the daemon may both sync)
by an advisory lock on a file in the device's data folder. After the vault,
the round moves shares, notes and invitations (``carnet.daemon.sharing.rounds``),
then pushes what that logged, so the other devices have it in this round.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from carnet.daemon.device import Device, trust_identity
from carnet.daemon.records import now_iso
from carnet.daemon.sharing.rounds import sync_sharing
from carnet.daemon.sharing.vault_ops import applier, state_ops
from carnet.daemon.sync import outbox, snapshot
from carnet.daemon.sync.pull import pull
from carnet.daemon.sync.relay_client import RelayClient
from carnet.daemon.sync.transfer import ensuring_mailbox, push
from carnet.protocol.errors import RefusedEntry, RelayError

LOCK_WAIT = 60.0


@dataclass(frozen=True)
class SyncReport:
    sealed_ops: int
    pushed_entries: int
    pulled_entries: int
    applied_ops: int
    cursor: int
    # Sharing (see carnet.daemon.sharing.rounds): entries of share mailboxes.
    shared_entries_pushed: int = 0
    shared_entries_pulled: int = 0
    invitations_received: int = 0
    notes_received: int = 0
    # This device's snapshot, and the entries the relay dropped (daemon/sync/snapshot.py).
    snapshot_entries: int = 0
    compacted: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@asynccontextmanager
async def sync_lock(path: Path) -> AsyncIterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if loop.time() > deadline:
                    raise RelayError("another sync of this device has not finished") from None
                await asyncio.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing releases the lock


async def sync_vault(
    device: Device, relay: RelayClient, *, snapshot_now: bool = False
) -> SyncReport:
    """One round: the vault, then sharing, then a snapshot if one is due (or
    `snapshot_now`). Raises RefusedEntry after the round if a sharing mailbox held
    entries that were refused (and skipped)."""
    secrets = device.unlock()
    keys = secrets.vault_mailbox
    writer = secrets.writer
    trusted = trust_identity(secrets.identity.verify_key)
    own = keys.writer_tag(writer.public_key)
    store = device.store

    def create() -> Awaitable[bool]:
        return relay.create(keys)

    async with sync_lock(device.paths.sync_lock):
        sealed = outbox.seal_outbox(store, keys, writer)
        pushed = await push(store, relay, keys, create)
        result = await ensuring_mailbox(
            store, relay, keys, lambda: pull(store, relay, keys, trusted, own, applier(store))
        )
        sharing = await sync_sharing(device, relay)
        sealed += outbox.seal_outbox(store, keys, writer)
        pushed += await push(store, relay, keys, create)
        snapshot_entries = 0
        if snapshot_now or snapshot.due(store, keys):
            snapshot_entries = snapshot.seal(store, keys, writer, state_ops(store))
            pushed += await push(store, relay, keys, create)
        compacted = await snapshot.compact(store, relay, keys, own)
        with store.transaction():
            store.set_meta("last_sync", now_iso())
    if sharing.refused:
        more = f" (and {len(sharing.refused) - 1} more)" if len(sharing.refused) > 1 else ""
        raise RefusedEntry(sharing.refused[0] + more)
    return SyncReport(
        sealed,
        pushed,
        result.entries,
        result.ops,
        result.cursor,
        sharing.shared_entries_pushed,
        sharing.shared_entries_pulled,
        sharing.invitations_received,
        sharing.notes_received,
        snapshot_entries,
        compacted,
    )
