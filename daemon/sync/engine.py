"""One sync round of a device: seal queued operations, push, then pull.

Rounds are serialised across processes (the CLI and the daemon may both sync)
by an advisory lock on a file in the device's data folder.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from carnet.daemon.device import Device, trust_identity
from carnet.daemon.records import now_iso
from carnet.daemon.sync import outbox
from carnet.daemon.sync.pull import pull
from carnet.daemon.sync.relay_client import MailboxGone, RelayClient
from carnet.protocol.errors import RelayError
from carnet.protocol.mailbox import MailboxKeys
from carnet.protocol.wire import MAX_BATCH_ENTRIES

LOCK_WAIT = 60.0
T = TypeVar("T")


@dataclass(frozen=True)
class SyncReport:
    sealed_ops: int
    pushed_entries: int
    pulled_entries: int
    applied_ops: int
    cursor: int

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


async def ensuring_mailbox(
    relay: RelayClient, keys: MailboxKeys, call: Callable[[], Awaitable[T]]
) -> T:
    """Run `call`; if the relay has no such mailbox yet (or lost it), create it and retry."""
    try:
        return await call()
    except MailboxGone:
        await relay.create(keys)
        return await call()


async def push(device: Device, relay: RelayClient, keys: MailboxKeys) -> int:
    """Send every sealed entry the relay does not have yet; returns how many."""
    entries = outbox.unpushed(device.store, keys)
    for start in range(0, len(entries), MAX_BATCH_ENTRIES):
        batch = entries[start : start + MAX_BATCH_ENTRIES]
        await ensuring_mailbox(relay, keys, lambda b=batch: relay.append(keys, b))
        outbox.mark_pushed(device.store, keys, batch[-1].seq)
    return len(entries)


async def sync_vault(device: Device, relay: RelayClient) -> SyncReport:
    secrets = device.unlock()
    keys = secrets.vault_mailbox
    writer = secrets.writer
    trusted = trust_identity(secrets.identity.verify_key)
    own = keys.writer_tag(writer.public_key)
    async with sync_lock(device.paths.sync_lock):
        sealed = outbox.seal_outbox(device.store, keys, writer)
        pushed = await push(device, relay, keys)
        result = await ensuring_mailbox(
            relay, keys, lambda: pull(device.store, relay, keys, trusted, own)
        )
        with device.store.transaction():
            device.store.set_meta("last_sync", now_iso())
    return SyncReport(sealed, pushed, result.entries, result.ops, result.cursor)
