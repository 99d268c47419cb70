"""Per-writer append-only chains, as a reader checks them.

A reader keeps, for every writer of a mailbox, the last accepted sequence number
and entry hash. The next entry must carry exactly ``seq + 1`` and
``prev == head``. Anything else is an attack by whoever served the entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from carnet.protocol.envelope import GENESIS, OpenedEntry
from carnet.protocol.errors import ForkedFeed, MissingEntry, ReplayedEntry


@dataclass
class FeedHead:
    seq: int = 0
    head: bytes = GENESIS

    def accept(self, entry: OpenedEntry) -> None:
        """Advance over `entry`, or raise if it does not extend this chain."""
        where = f"(writer {entry.writer.hex()[:8]}, entry {entry.seq}, expected {self.seq + 1})"
        if entry.seq <= self.seq:
            raise ReplayedEntry(where)
        if entry.seq > self.seq + 1:
            raise MissingEntry(where)
        if entry.prev != self.head:
            raise ForkedFeed(where)
        self.seq = entry.seq
        self.head = entry.hash
