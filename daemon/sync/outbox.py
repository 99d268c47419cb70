"""Sealing queued local operations into entries of this device's own feed.

Sealing happens before any network I/O and in one transaction with removing
the operations from the outbox, so a crash at any point neither loses an
operation nor seals it twice. The sealed bytes are kept until the relay has
them, and a retry sends the very same bytes (the relay's append is idempotent).
"""

from __future__ import annotations

import json
from typing import Any

from carnet.daemon.store import Store
from carnet.protocol import frontier
from carnet.protocol.envelope import GENESIS, Entry, Writer, seal
from carnet.protocol.mailbox import MailboxKeys
from carnet.protocol.snapshot import OPS_VERSION

# Room for the ops of one entry: well under the 64 KiB padded maximum, leaving
# space for the signature, device certificate and JSON framing.
BODY_BUDGET = 60 * 1024


def batches(ops: list[str], budget: int = BODY_BUDGET) -> list[list[Any]]:
    """Group encoded operations, in order, into entry bodies of at most `budget` bytes."""
    batches: list[list[Any]] = []
    size = budget
    for op in ops:
        encoded = len(op.encode()) + 1
        if size + encoded > budget:
            batches.append([])
            size = 0
        batches[-1].append(json.loads(op))
        size += encoded
    return batches


def feed_head(store: Store, keys: MailboxKeys) -> tuple[int, bytes]:
    row = store.conn.execute(
        "SELECT seq, hash FROM feed_out WHERE mailbox = ? ORDER BY seq DESC LIMIT 1",
        (keys.hex_id,),
    ).fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


def append_own(store: Store, keys: MailboxKeys, writer: Writer, body: dict[str, Any]) -> Entry:
    """Seal `body` as this device's next entry in `keys`' mailbox (inside a transaction)."""
    seq, prev = feed_head(store, keys)
    entry = seal(keys, writer, seq + 1, prev, body)
    store.conn.execute(
        "INSERT INTO feed_out (mailbox, seq, writer, hash, data) VALUES (?, ?, ?, ?, ?)",
        (keys.hex_id, entry.seq, entry.writer, entry.hash, entry.data),
    )
    return entry


def heads_seen(store: Store, keys: MailboxKeys) -> frontier.Heads:
    """Per other writer of the mailbox, the newest entry this device knows the hash
    of: the head of the chain it verified, or what a snapshot vouched for, if further."""
    cur = store.conn.execute(
        "SELECT writer, seq, head, floor_seq, floor_head FROM feed_in WHERE mailbox = ?",
        (keys.hex_id,),
    )
    heads: frontier.Heads = {}
    for other, seq, head, floor_seq, floor_head in cur:
        best = max((seq, head), (floor_seq, floor_head))
        if best[0] > 0:
            heads[other] = best
    return heads


def seal_ops(store: Store, keys: MailboxKeys, writer: Writer, ops: list[str]) -> int:
    """Seal encoded operations, in order, as this device's next entries (inside a
    transaction), each saying what this device has seen of the other writers
    (``protocol/frontier.py``). Returns the number of entries written.
    """
    seen = frontier.encode(heads_seen(store, keys))
    grouped = batches(ops, BODY_BUDGET - len(json.dumps(seen)))
    for batch in grouped:
        append_own(store, keys, writer, {"ops": batch, "v": OPS_VERSION, "seen": seen})
    return len(grouped)


def seal_outbox(store: Store, keys: MailboxKeys, writer: Writer) -> int:
    """Move every queued operation into sealed entries; returns the operations sealed."""
    with store.transaction():
        rows = store.conn.execute("SELECT id, op FROM outbox ORDER BY id").fetchall()
        seal_ops(store, keys, writer, [op for _, op in rows])
        if rows:
            store.conn.execute("DELETE FROM outbox WHERE id <= ?", (rows[-1][0],))
    return len(rows)


def unpushed(store: Store, keys: MailboxKeys, limit: int = -1) -> list[Entry]:
    cur = store.conn.execute(
        "SELECT writer, seq, data FROM feed_out WHERE mailbox = ? AND pushed = 0 ORDER BY seq "
        "LIMIT ?",
        (keys.hex_id, limit),
    )
    return [Entry(writer=w, seq=s, data=d) for w, s, d in cur]


def relay_lost(store: Store, keys: MailboxKeys) -> bool:
    """The relay lost this mailbox's entries (erased, or restored from an old backup).

    Every entry this device wrote is kept, so all of them are sent again. Every
    writer's chain is checked again from its first entry, as each device sends
    its entries again, but what was applied already is not applied twice (see
    ``pull``). Returns whether this device had used the mailbox before.
    """
    with store.transaction():
        used = store.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM feed_out WHERE mailbox = ? AND pushed = 1) "
            "OR EXISTS (SELECT 1 FROM cursors WHERE mailbox = ? AND cursor > 0)",
            (keys.hex_id, keys.hex_id),
        ).fetchone()[0]
        store.conn.execute("UPDATE feed_out SET pushed = 0 WHERE mailbox = ?", (keys.hex_id,))
        store.conn.execute("DELETE FROM cursors WHERE mailbox = ?", (keys.hex_id,))
        # (The right-hand sides all see the row as it was before the update.)
        store.conn.execute(
            "UPDATE feed_in SET applied = max(applied, seq), "
            "applied_head = CASE WHEN seq > applied THEN head ELSE applied_head END, "
            "seq = 0, head = ? WHERE mailbox = ?",
            (GENESIS, keys.hex_id),
        )
    return bool(used)


def mark_pushed(store: Store, keys: MailboxKeys, up_to_seq: int) -> None:
    with store.transaction():
        store.conn.execute(
            "UPDATE feed_out SET pushed = 1 WHERE mailbox = ? AND seq <= ? AND pushed = 0",
            (keys.hex_id, up_to_seq),
        )


def pending_count(store: Store) -> int:
    """Operations and sealed entries not yet on the relay."""
    ops = store.conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    entries = store.conn.execute("SELECT count(*) FROM feed_out WHERE pushed = 0").fetchone()[0]
    return int(ops + entries)
