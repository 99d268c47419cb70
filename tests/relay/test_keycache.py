"""The relay's short-lived cache of mailbox capability keys."""

from __future__ import annotations

from carnet.relay.keycache import KeyCache
from carnet.relay.storage.base import Mailbox


class CountingStorage:
    """Only what KeyCache uses of a Storage: `clock` and `get_mailbox`."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.calls = 0
        self.mailboxes: dict[bytes, Mailbox] = {}

    def clock(self) -> float:
        return self.now

    async def get_mailbox(self, mailbox_id: bytes) -> Mailbox | None:
        self.calls += 1
        found = self.mailboxes.get(mailbox_id)
        if found is None or (found.expires_at is not None and found.expires_at <= self.now):
            return None
        return found


async def test_keys_are_looked_up_once_per_ttl_and_forgotten_on_demand() -> None:
    storage = CountingStorage()
    storage.mailboxes[b"m"] = Mailbox(b"m", b"w" * 32, b"r" * 32, None)
    tick = [0.0]
    cache = KeyCache(storage, ttl=5, monotonic=lambda: tick[0])  # type: ignore[arg-type]
    for _ in range(3):
        assert (await cache.get(b"m")) == storage.mailboxes[b"m"]
    assert storage.calls == 1
    tick[0] = 6.0
    del storage.mailboxes[b"m"]  # deleted through another node
    assert await cache.get(b"m") is None and storage.calls == 2
    storage.mailboxes[b"m"] = Mailbox(b"m", b"w" * 32, b"r" * 32, None)
    await cache.get(b"m")
    cache.forget(b"m")
    await cache.get(b"m")
    assert storage.calls == 4


async def test_an_expired_mailbox_is_not_served_from_the_cache() -> None:
    storage = CountingStorage()
    storage.mailboxes[b"m"] = Mailbox(b"m", b"w" * 32, b"r" * 32, expires_at=1010.0)
    cache = KeyCache(storage, ttl=60, monotonic=lambda: 0.0)  # type: ignore[arg-type]
    assert await cache.get(b"m") is not None
    storage.now = 1011.0
    assert await cache.get(b"m") is None
