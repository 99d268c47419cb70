"""Getting sealed entries onto the relay, creating the mailbox when it is missing.

Shared by the vault sync (``engine``) and sharing (``carnet.daemon.sharing``),
which differ only in *whether and how* a missing mailbox may be created: the
vault is created on demand, a contact's introduction mailbox with the read key
from their card, and a share's mailbox never again once it is gone (it was
revoked or it expired, and recreating it would reopen it to the doctor).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from carnet.daemon.store import Store
from carnet.daemon.sync import outbox, snapshot
from carnet.daemon.sync.relay_client import FeedBehind, MailboxGone, RelayClient
from carnet.protocol.mailbox import MailboxKeys
from carnet.protocol.wire import MAX_BATCH_ENTRIES

T = TypeVar("T")
Create = Callable[[], Awaitable[object]]


async def ensuring(call: Callable[[], Awaitable[T]], create: Create | None) -> T:
    """Run `call`; if the relay has no such mailbox and `create` is given, create it, retry."""
    try:
        return await call()
    except MailboxGone:
        if create is None:
            raise
        await create()
        return await call()


async def recover(store: Store, keys: MailboxKeys, create: Create | None) -> None:
    """The relay lost `keys`' mailbox: reset what this device believed it held
    (``outbox.relay_lost``), then create the mailbox again if `create` is given."""
    with store.transaction():
        used = outbox.relay_lost(store, keys)
        snapshot.forget_pending(store, keys)
    if used:
        store.add_alert(
            "the relay had lost entries of a mailbox (erased, or restored from an older "
            "backup); this device sends its own entries again and reads it from the start"
        )
    if create is not None:
        await create()


async def ensuring_mailbox(
    store: Store, relay: RelayClient, keys: MailboxKeys, call: Callable[[], Awaitable[T]]
) -> T:
    """Run `call`; if the relay has no such mailbox yet (or lost it), create it and retry."""
    return await ensuring(call, lambda: recover(store, keys, lambda: relay.create(keys)))


async def push(store: Store, relay: RelayClient, keys: MailboxKeys, create: Create | None) -> int:
    """Send every sealed entry the relay does not have yet; returns how many.

    Without `create`, a missing mailbox raises ``MailboxGone`` and nothing is marked sent.
    A relay that lost the mailbox (gone, or missing earlier entries of this
    device's feed) gets this device's whole feed again, once.
    """
    pushed = 0
    recovered = False
    while batch := outbox.unpushed(store, keys, MAX_BATCH_ENTRIES):
        try:
            await relay.append(keys, batch)
        except FeedBehind:
            if recovered:
                raise
            await recover(store, keys, None)
            recovered = True
            continue
        except MailboxGone:
            if create is None or recovered:
                raise
            await recover(store, keys, create)
            recovered = True
            continue
        outbox.mark_pushed(store, keys, batch[-1].seq)
        pushed += len(batch)
    return pushed
