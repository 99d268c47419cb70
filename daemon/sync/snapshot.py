"""Snapshots of a device's state, and compacting the history they cover.

A mailbox that only grows costs every new device a full replay and the relay
its disk. When the vault holds many entries since the newest snapshot, a
device seals its whole state as a snapshot (``protocol/snapshot.py``) at the
end of its round, pushes it, then asks the relay to drop every entry before
the snapshot's opening, but only if all of them are covered: entries at or
below the read cursor the state was taken at (everything there was applied),
and this device's own. Another device's entry between that cursor and the
opening is not in the state, so the device then snapshots again next round.

A device never snapshots history that a newer version of carnet wrote to: its
state would leave out what only the newer version understands.

What to compact for is remembered in the store (meta) until the relay has
answered, so a crash between sealing, pushing and compacting only delays it.
"""

from __future__ import annotations

from carnet.daemon.store import Store
from carnet.daemon.sync import outbox
from carnet.daemon.sync.relay_client import RelayClient
from carnet.protocol import snapshot
from carnet.protocol.envelope import Writer
from carnet.protocol.errors import NewerVersionWrote
from carnet.protocol.mailbox import MailboxKeys

# A snapshot is due after this many entries since the newest one, and after at
# least KEEP_RATIO times the size of this device's last snapshot, so that a
# large state is not rewritten more often than it is worth.
SNAPSHOT_AFTER = 1000
KEEP_RATIO = 4


def _meta(name: str, keys: MailboxKeys) -> str:
    """Meta keys, per mailbox: ``pending`` ("opening seq,last seq,cursor covered") of the
    snapshot to compact for; ``entries`` of this device's last snapshot;
    ``retry`` after a snapshot that could not be compacted behind."""
    return f"snapshot_{name}:{keys.hex_id}"


def _position(store: Store, keys: MailboxKeys) -> tuple[int, int, int]:
    """The read cursor, the newest snapshot's cursor and the newest version seen."""
    row = store.conn.execute(
        "SELECT cursor, snapshot, version FROM cursors WHERE mailbox = ?", (keys.hex_id,)
    ).fetchone()
    return row if row else (0, 0, 0)


def allowed(store: Store, keys: MailboxKeys) -> bool:
    """False once a newer version of carnet wrote to this mailbox."""
    return _position(store, keys)[2] <= snapshot.OPS_VERSION


def due(store: Store, keys: MailboxKeys) -> bool:
    """Whether enough entries arrived since the newest snapshot seen or written
    (or the last one could not be compacted behind), and this version may write one."""
    cursor, newest, _ = _position(store, keys)
    size = int(store.get_meta(_meta("entries", keys), "0") or 0)
    grown = cursor - newest >= max(SNAPSHOT_AFTER, KEEP_RATIO * size)
    return allowed(store, keys) and (grown or bool(store.get_meta(_meta("retry", keys))))


def seal(store: Store, keys: MailboxKeys, writer: Writer, state: list[str]) -> int:
    """Seal `state` (encoded operations) as a snapshot in this device's feed; returns
    its entries. The caller pushes them; ``compact`` does the rest."""
    if not allowed(store, keys):
        raise NewerVersionWrote()
    parts = outbox.batches(state)
    with store.transaction():
        covers = _position(store, keys)[0]
        heads = outbox.heads_seen(store, keys)
        body = snapshot.opening(heads, len(parts))
        # What this snapshot vouches for is where this device, too, must continue
        # from if it reads the mailbox again from the start once it is compacted
        # (its own opening it skips, as all its own entries).
        store.conn.executemany(
            "UPDATE feed_in SET floor_seq = ?, floor_head = ? "
            "WHERE mailbox = ? AND writer = ? AND floor_seq < ?",
            [(seq, head, keys.hex_id, w, seq) for w, (seq, head) in heads.items()],
        )
        opening = outbox.append_own(store, keys, writer, body)
        for part in parts:
            outbox.append_own(store, keys, writer, {"ops": part, "v": snapshot.OPS_VERSION})
        store.set_meta(_meta("pending", keys), f"{opening.seq},{opening.seq + len(parts)},{covers}")
        store.set_meta(_meta("entries", keys), str(1 + len(parts)))
        store.conn.execute("DELETE FROM meta WHERE key = ?", (_meta("retry", keys),))
    return 1 + len(parts)


def forget_pending(store: Store, keys: MailboxKeys) -> None:
    """Drop the snapshot to compact `keys` for (inside a transaction): its cursors
    no longer mean anything once the relay lost the mailbox."""
    store.conn.execute("DELETE FROM meta WHERE key = ?", (_meta("pending", keys),))


async def compact(store: Store, relay: RelayClient, keys: MailboxKeys, own: bytes) -> int:
    """Compact for the pending snapshot once it is on the relay; returns the entries dropped."""
    pending = store.get_meta(_meta("pending", keys))
    if not pending:
        return 0
    fields = pending.split(",")
    if len(fields) != 3:  # written by an older version: only delays the compaction
        with store.transaction():
            forget_pending(store, keys)
        return 0
    opening_seq, last_seq, covers = (int(part) for part in fields)
    # Not before the whole snapshot is on the relay: what it replaces would be gone
    # while what replaces it is not there yet.
    pushed = store.conn.execute(
        "SELECT pushed FROM feed_out WHERE mailbox = ? AND seq = ?", (keys.hex_id, last_seq)
    ).fetchone()
    if not pushed or not pushed[0]:
        return 0
    at, covered = await _find_opening(relay, keys, own, opening_seq, covers)
    dropped = await relay.compact(keys, at) if at and covered else 0
    with store.transaction():
        forget_pending(store, keys)
        if at and not covered:
            store.set_meta(_meta("retry", keys), "1")
        if at:
            store.conn.execute(
                "INSERT INTO cursors (mailbox, cursor, snapshot) VALUES (?, 0, ?) "
                "ON CONFLICT (mailbox) DO UPDATE SET snapshot = max(snapshot, excluded.snapshot)",
                (keys.hex_id, at),
            )
    return dropped


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
