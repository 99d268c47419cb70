"""Pulling a mailbox: fetch pages after the cursor, verify everything, then apply.

Verification (envelope authenticity, then each writer's chain) covers the whole
pull before a single operation is applied, and applying is one transaction: a
refused entry leaves the store exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from carnet.daemon.store import Store
from carnet.daemon.sync.relay_client import RelayClient
from carnet.protocol import snapshot
from carnet.protocol.envelope import OpenedEntry, open_entry
from carnet.protocol.errors import AttackDetected, ForkedFeed
from carnet.protocol.feed import FeedHead
from carnet.protocol.mailbox import MailboxKeys

TrustCheck = Callable[[bytes, bytes], bool]
Apply = Callable[[OpenedEntry], str]


@dataclass(frozen=True)
class PullResult:
    entries: int
    ops: int
    cursor: int


def read_cursor(store: Store, keys: MailboxKeys) -> int:
    row = store.conn.execute(
        "SELECT cursor FROM cursors WHERE mailbox = ?", (keys.hex_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def load_head(store: Store, keys: MailboxKeys, writer: bytes) -> FeedHead:
    row = store.conn.execute(
        "SELECT seq, head, floor_seq, floor_head FROM feed_in WHERE mailbox = ? AND writer = ?",
        (keys.hex_id, writer),
    ).fetchone()
    return FeedHead(*row) if row else FeedHead()


def apply_ops(store: Store, entry: OpenedEntry) -> str:
    """Default applier: the entry's body is a list of record/device operations."""
    newest = ""
    ops: list[dict[str, Any]] = entry.body.get("ops", [])
    for op in ops:
        newest = max(newest, store.apply_remote(op))
    return newest


async def pull(
    store: Store,
    relay: RelayClient,
    keys: MailboxKeys,
    trusted: TrustCheck,
    own_writer: bytes,
    apply: Apply | None = None,
) -> PullResult:
    start = cursor = read_cursor(store, keys)
    heads: dict[bytes, FeedHead] = {}
    applied: dict[bytes, tuple[int, bytes]] = {}
    accepted: list[OpenedEntry] = []
    newest_snapshot = 0

    def head_of(writer: bytes) -> FeedHead:
        if writer not in heads:
            heads[writer] = load_head(store, keys, writer)
            applied[writer] = load_applied(store, keys, writer)
        return heads[writer]

    try:
        while True:
            page = await relay.read(keys, cursor)
            for at, entry in page.entries:
                if entry.writer == own_writer:
                    continue  # our own entries: already applied when written
                opened = open_entry(keys, entry, trusted)
                vouched = snapshot.claims(opened.body)
                head_of(opened.writer).accept(opened, snapshot=vouched is not None)
                if vouched is not None:
                    newest_snapshot = at
                    for writer, (seq, head) in vouched.items():
                        if writer != own_writer:
                            head_of(writer).cover(seq, head, writer)
                if not already_applied(opened, *applied[opened.writer]):
                    accepted.append(opened)
            cursor = page.cursor
            if not page.more:
                break
    except AttackDetected as exc:
        store.add_alert(str(exc))
        raise
    if cursor == start:
        return PullResult(0, 0, cursor)
    applier = apply or (lambda e: apply_ops(store, e))
    ops = 0
    with store.transaction():
        newest = ""
        for opened in accepted:
            newest = max(newest, applier(opened))
            ops += len(opened.body.get("ops", []))
        if newest:
            store.observe(newest)
        save_position(store, keys, heads, cursor, newest_snapshot)
    return PullResult(len(accepted), ops, cursor)


def load_applied(store: Store, keys: MailboxKeys, writer: bytes) -> tuple[int, bytes]:
    """How far a writer's entries were applied before the relay lost them (0 if never)."""
    row = store.conn.execute(
        "SELECT applied, applied_head FROM feed_in WHERE mailbox = ? AND writer = ?",
        (keys.hex_id, writer),
    ).fetchone()
    return (row[0], row[1]) if row else (0, b"")


def already_applied(entry: OpenedEntry, applied: int, applied_head: bytes) -> bool:
    """True for an entry sent again after a relay lost it (see ``outbox.relay_lost``).

    Its chain was checked like any other's; where the old copy ended, the new one
    must end in the very same entry, or the feed forked.
    """
    if entry.seq == applied and entry.hash != applied_head:
        raise ForkedFeed(f"(writer {entry.writer.hex()[:8]}, entry {entry.seq}, sent again)")
    return entry.seq <= applied


def save_position(
    store: Store, keys: MailboxKeys, heads: dict[bytes, FeedHead], cursor: int, snapshot_at: int = 0
) -> None:
    """Record the accepted feed heads, the read cursor and the newest snapshot seen
    (inside a transaction)."""
    store.conn.executemany(
        "INSERT INTO feed_in (mailbox, writer, seq, head, floor_seq, floor_head) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (mailbox, writer) DO UPDATE SET "
        "seq = excluded.seq, head = excluded.head, "
        "floor_seq = excluded.floor_seq, floor_head = excluded.floor_head",
        [(keys.hex_id, w, h.seq, h.head, h.floor_seq, h.floor_head) for w, h in heads.items()],
    )
    store.conn.execute(
        "INSERT INTO cursors (mailbox, cursor, snapshot) VALUES (?, ?, ?) "
        "ON CONFLICT (mailbox) DO UPDATE SET cursor = excluded.cursor, "
        "snapshot = max(snapshot, excluded.snapshot)",
        (keys.hex_id, cursor, snapshot_at),
    )
