"""Capability keys of recently used mailboxes, kept for a few seconds.

Checking a request's signature needs the mailbox's keys; with PostgreSQL that
lookup is a database round trip of its own on every append and read. Keys
never change while a mailbox exists, so they are remembered briefly. A mailbox
deleted (or expired, or recreated) through another node is seen within
``TTL`` seconds. Meanwhile the storage itself still refuses writes to a
mailbox that is gone, so a stale entry can delay a 404 but never write to a
mailbox that no longer exists; the one thing it can do is accept, for at most
``TTL`` seconds, the previous keys of a mailbox deleted and created again under
other keys through another node.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from carnet.relay.storage.base import Mailbox, Storage

TTL = 5.0
SIZE = 50_000


class KeyCache:
    def __init__(
        self, storage: Storage, ttl: float = TTL, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.storage = storage
        self.ttl = ttl
        self.monotonic = monotonic
        self._entries: OrderedDict[bytes, tuple[float, Mailbox]] = OrderedDict()

    async def get(self, mailbox_id: bytes) -> Mailbox | None:
        now = self.monotonic()
        cached = self._entries.get(mailbox_id)
        if cached is not None and cached[0] > now:
            mailbox = cached[1]
            if mailbox.expires_at is None or mailbox.expires_at > self.storage.clock():
                return mailbox
        mailbox = await self.storage.get_mailbox(mailbox_id)
        if mailbox is None:
            self.forget(mailbox_id)
            return None
        self._entries[mailbox_id] = (now + self.ttl, mailbox)
        self._entries.move_to_end(mailbox_id)
        if len(self._entries) > SIZE:
            self._entries.popitem(last=False)
        return mailbox

    def forget(self, mailbox_id: bytes) -> None:
        self._entries.pop(mailbox_id, None)
