"""Snapshots of a device's state, and compacting the history they cover.

A mailbox that only grows costs every new device a full replay and the relay
its disk. When the vault holds many entries since the newest snapshot, a
device seals its whole state as a snapshot (``protocol/snapshot.py``) at the
end of its round, pushes it, then asks the relay to drop every entry before
the snapshot's opening, but only if all of them are covered: entries at or
below the read cursor the state was taken at (everything there was applied),
and this device's own. Another device's entry between that cursor and the
opening is not in the state, so compaction then waits for a later snapshot.

The snapshot to compact for is remembered in the store (meta), so a crash
between sealing, pushing and compacting only delays the compaction.
"""

from __future__ import annotations

from carnet.daemon.store import Store
from carnet.daemon.sync import outbox
from carnet.daemon.sync.pull import read_cursor
from carnet.daemon.sync.relay_client import RelayClient
from carnet.protocol import snapshot
from carnet.protocol.envelope import Writer
from carnet.protocol.mailbox import MailboxKeys

# A snapshot is due after this many entries since the newest one, and after at
# least KEEP_RATIO times the size of this device's last snapshot, so that a
# large state is not rewritten more often than it is worth.
SNAPSHOT_AFTER = 1000
KEEP_RATIO = 4


def _pending(keys: MailboxKeys) -> str:
    """Meta key: "opening seq,cursor covered" of the snapshot to compact `keys` for."""
    return f"snapshot_pending:{keys.hex_id}"


def _size(keys: MailboxKeys) -> str:
    """Meta key: how many entries this device's last snapshot of `keys` took."""
    return f"snapshot_entries:{keys.hex_id}"


def due(store: Store, keys: MailboxKeys) -> bool:
    """Whether enough entries arrived since the newest snapshot seen or written."""
    row = store.conn.execute(
        "SELECT cursor, snapshot FROM cursors WHERE mailbox = ?", (keys.hex_id,)
    ).fetchone()
    cursor, newest = row if row else (0, 0)
    size = int(store.get_meta(_size(keys), "0") or 0)
    return cursor - newest >= max(SNAPSHOT_AFTER, KEEP_RATIO * size)


def covered_heads(store: Store, keys: MailboxKeys) -> snapshot.Heads:
    """Per other writer, the furthest head this device's state includes: the
    chain it verified, or what an earlier snapshot vouched for, if further."""
    cur = store.conn.execute(
        "SELECT writer, seq, head, floor_seq, floor_head FROM feed_in WHERE mailbox = ?",
        (keys.hex_id,),
    )
    heads: snapshot.Heads = {}
    for writer, seq, head, floor_seq, floor_head in cur:
        best = max((seq, head), (floor_seq, floor_head))
        if best[0] > 0:
            heads[writer] = best
    return heads


def seal(store: Store, keys: MailboxKeys, writer: Writer, state: list[str]) -> int:
    """Seal `state` (encoded operations) as a snapshot in this device's feed; returns
    its entries. The caller pushes them; ``compact`` does the rest."""
    with store.transaction():
        covers = read_cursor(store, keys)
        opening = outbox.append_own(
            store, keys, writer, snapshot.opening(covered_heads(store, keys))
        )
        entries = 1 + outbox.seal_ops(store, keys, writer, state)
        store.set_meta(_pending(keys), f"{opening.seq},{covers}")
        store.set_meta(_size(keys), str(entries))
    return entries


def forget_pending(store: Store, keys: MailboxKeys) -> None:
    """Drop the snapshot to compact `keys` for (inside a transaction): its cursors
    no longer mean anything once the relay lost the mailbox."""
    store.conn.execute("DELETE FROM meta WHERE key = ?", (_pending(keys),))


async def compact(store: Store, relay: RelayClient, keys: MailboxKeys, own: bytes) -> int:
    """Compact for the pending snapshot once it is on the relay; returns the entries dropped."""
    pending = store.get_meta(_pending(keys))
    if not pending:
        return 0
    opening_seq, covers = (int(part) for part in pending.split(","))
    pushed = store.conn.execute(
        "SELECT pushed FROM feed_out WHERE mailbox = ? AND seq = ?", (keys.hex_id, opening_seq)
    ).fetchone()
    if not pushed or not pushed[0]:
        return 0
    at, covered = await _find_opening(relay, keys, own, opening_seq, covers)
    with store.transaction():
        forget_pending(store, keys)
        if at:
            store.conn.execute(
                "INSERT INTO cursors (mailbox, cursor, snapshot) VALUES (?, 0, ?) "
                "ON CONFLICT (mailbox) DO UPDATE SET snapshot = max(snapshot, excluded.snapshot)",
                (keys.hex_id, at),
            )
    return await relay.compact(keys, at) if at and covered else 0


async def _find_opening(
    relay: RelayClient, keys: MailboxKeys, own: bytes, opening_seq: int, covers: int
) -> tuple[int, bool]:
    """The opening's cursor (0 if the relay has it no more), and whether every entry
    between `covers` and it is this device's own."""
    after, covered = covers, True
    while True:
        page = await relay.read(keys, after, limit=64)
        for at, entry in page.entries:
            if entry.writer == own and entry.seq == opening_seq:
                return at, covered
            covered = covered and entry.writer == own
        if not page.more:
            return 0, False
        after = page.cursor
