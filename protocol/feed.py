"""Per-writer append-only chains, as a reader checks them.

A reader keeps, for every writer of a mailbox, the last accepted sequence number
and entry hash. The next entry must carry exactly ``seq + 1`` and
``prev == head``. Anything else is an attack by whoever served the entries,
with one exception that compaction needs (``protocol/snapshot.py``): history a
*snapshot* covers may be missing. A snapshot's first entry may follow a gap in
its own writer's chain, and it vouches for the other writers' heads it covers
(their *floor*), so an entry continuing exactly from a floor is accepted too.
"""

from __future__ import annotations

from dataclasses import dataclass

from carnet.protocol.envelope import GENESIS, OpenedEntry
from carnet.protocol.errors import ForkedFeed, MissingEntry, ReplayedEntry


@dataclass
class FeedHead:
    seq: int = 0
    head: bytes = GENESIS
    # The newest (seq, hash) of this writer that a snapshot vouched for.
    floor_seq: int = 0
    floor_head: bytes = GENESIS

    def accept(self, entry: OpenedEntry, *, snapshot: bool = False) -> None:
        """Advance over `entry`, or raise if it does not extend this chain.

        With `snapshot`, `entry` opens a snapshot (signed by a trusted writer like
        any entry), which may follow compacted history of its own writer.
        """
        where = f"(writer {entry.writer.hex()[:8]}, entry {entry.seq}, expected {self.seq + 1})"
        if entry.seq <= self.seq:
            raise ReplayedEntry(where)
        if entry.seq > self.seq + 1:
            from_floor = entry.seq - 1 == self.floor_seq and entry.prev == self.floor_head
            if not (snapshot or from_floor):
                raise MissingEntry(where)
            self.seq, self.head = entry.seq - 1, entry.prev
        if entry.prev != self.head:
            raise ForkedFeed(where)
        self.seq = entry.seq
        self.head = entry.hash

    def cover(self, seq: int, head: bytes, writer: bytes) -> None:
        """A snapshot vouches that this writer's chain reached `(seq, head)`."""
        if seq == self.seq and head != self.head:
            raise ForkedFeed(f"(writer {writer.hex()[:8]}, entry {seq}, in a snapshot)")
        if seq > self.floor_seq:
            self.floor_seq, self.floor_head = seq, head
