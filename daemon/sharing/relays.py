"""Clients of the relays a sync round talks to, one per URL.

A contact may live on another relay than ours: their introduction mailbox is on
theirs, while a share's mailboxes are on the relay of the patient who made it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from carnet.daemon.sync.relay_client import RelayClient


class Relays:
    def __init__(self, home: RelayClient) -> None:
        self.home = home
        self._others: dict[str, RelayClient] = {}

    def get(self, url: str) -> RelayClient:
        url = url.rstrip("/")
        if not url or url == self.home.url:
            return self.home
        if url not in self._others:
            self._others[url] = RelayClient(url)
        return self._others[url]

    async def close(self) -> None:
        for client in self._others.values():
            await client.close()


@asynccontextmanager
async def relay_pool(home: RelayClient) -> AsyncIterator[Relays]:
    """A pool around `home` (whose owner closes it); the other clients close on exit."""
    pool = Relays(home)
    try:
        yield pool
    finally:
        await pool.close()
