"""Pulling a mailbox: fetch pages after the cursor, verify everything, then apply.

Verification (envelope authenticity, then each writer's chain) covers the whole
pull before a single operation is applied, and applying is one transaction: a
refused entry leaves the store exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from carnet.daemon.store import Store
from carnet.daemon.sync import overdue, transfer
from carnet.daemon.sync.relay_client import MailboxBehind, RelayClient
from carnet.protocol import frontier, snapshot
from carnet.protocol.envelope import OpenedEntry, open_entry
from carnet.protocol.errors import AttackDetected, ForkedFeed, MissingEntry, ReplayedEntry
from carnet.protocol.feed import FeedHead
from carnet.protocol.mailbox import MailboxKeys

TrustCheck = Callable[[bytes, bytes], bool]
Apply = Callable[[OpenedEntry], str]


@dataclass(frozen=True)
class PullResult:
    entries: int
    ops: int
    cursor: int


def read_anchor(store: Store, keys: MailboxKeys) -> tuple[int, bytes]:
    """The read cursor and the hash of the entry there (empty if not known)."""
    row = store.conn.execute(
        "SELECT cursor, anchor FROM cursors WHERE mailbox = ?", (keys.hex_id,)
    ).fetchone()
    return (int(row[0]), bytes(row[1])) if row else (0, b"")


def read_cursor(store: Store, keys: MailboxKeys) -> int:
    return read_anchor(store, keys)[0]


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


@dataclass
class _Position:
    """Where a pull stands: what it would commit if it ended here."""

    cursor: int
    heads: dict[bytes, FeedHead]
    accepted: int
    snapshot: int = 0  # cursor of the newest snapshot opening read
    version: int = 0  # newest version of operations its writers knew
    anchor: bytes = b""  # hash of the entry at `cursor`, as read

    def copy(self) -> _Position:
        heads = {w: replace(h) for w, h in self.heads.items()}
        return replace(self, heads=heads)


async def pull(
    store: Store,
    relay: RelayClient,
    keys: MailboxKeys,
    trusted: TrustCheck,
    own_writer: bytes,
    apply: Apply | None = None,
) -> PullResult:
    """Read, verify and apply what follows the stored cursor; raises AttackDetected
    (after recording an alert) if the relay served anything that fails verification.

    A relay restored from an older backup holds less than this device has read
    (its latest cursor is behind this device's), or, once writers have sent
    their feeds again, serves entries this device has seen under later cursors:
    that looks like a replay or a gap from where this device stands. Either way
    the device handles it as a relay's data loss (``transfer.recover``: it sends
    its own feed again) and reads the mailbox again from its start; a replay or
    a gap that is really there is refused all the same.
    """
    try:
        try:
            return await _pull(store, relay, keys, trusted, own_writer, apply)
        except MailboxBehind:
            pass
        except (ReplayedEntry, MissingEntry):
            if read_cursor(store, keys) == 0:
                raise
        await transfer.recover(store, keys, None)
        return await _pull(store, relay, keys, trusted, own_writer, apply)
    except AttackDetected as exc:
        store.add_alert(str(exc))
        raise


async def _pull(
    store: Store,
    relay: RelayClient,
    keys: MailboxKeys,
    trusted: TrustCheck,
    own_writer: bytes,
    apply: Apply | None,
) -> PullResult:
    start, anchor = read_anchor(store, keys)
    at = _Position(start, {}, 0, anchor=anchor)
    applied: dict[bytes, tuple[int, bytes]] = {}
    accepted: list[OpenedEntry] = []
    # Snapshots whose state has not all arrived: writer -> seq of its last entry of
    # state; and the position just before the first of them, kept if it never does.
    incomplete: dict[bytes, int] = {}
    before_incomplete: _Position | None = None
    read_now: dict[tuple[bytes, int], bytes] = {}  # hashes of the entries accepted so far
    claimed: dict[bytes, int] = {}  # the newest entry of each writer another said it saw

    def head_of(writer: bytes) -> FeedHead:
        if writer not in at.heads:
            at.heads[writer] = load_head(store, keys, writer)
            applied[writer] = load_applied(store, keys, writer)
        return at.heads[writer]

    def known(writer: bytes, seq: int) -> bytes | None:
        """The hash of `writer`'s entry `seq`, if this device knows it."""
        if writer == own_writer:
            return known_hash(store, keys, "feed_out", seq)
        if (writer, seq) in read_now:
            return read_now[writer, seq]
        head = head_of(writer)
        vouched = {head.seq: head.head, head.floor_seq: head.floor_head}
        return known_hash(store, keys, "chain", seq, writer) or vouched.get(seq)

    # Read from the last entry read, to see that it is still the same: a relay
    # restored from a backup may have given its cursor to another entry since.
    after = start - 1 if anchor else start
    while True:
        page = await relay.read(keys, after)
        if page.cursor < at.cursor:
            raise MailboxBehind(f"{page.cursor} < {at.cursor}")
        for cursor, entry in page.entries:
            if cursor == start and anchor:
                if entry.hash != anchor:
                    raise MailboxBehind(f"entry {cursor} is not the one read there")
                continue
            if entry.writer == own_writer:
                at.cursor, at.anchor = cursor, entry.hash
                continue  # our own entries: already applied when written
            opened = open_entry(keys, entry, trusted)
            found = snapshot.parse(opened.body)
            if found is not None and not incomplete:
                before_incomplete = at.copy()
            # An entry read before (the relay lost the mailbox since) must be the same.
            frontier.check({opened.writer: (opened.seq, opened.hash)}, known, opened.writer)
            # A gap before an opening is history its state covers, unless the
            # writer's previous snapshot still lacks state: that is withheld.
            head = head_of(opened.writer)
            head.accept(opened, snapshot=found is not None and opened.writer not in incomplete)
            read_now[opened.writer, opened.seq] = opened.hash
            seen = frontier.seen(opened.body)
            frontier.check(seen, known, opened.writer)
            for writer, (seq, _) in seen.items():
                claimed[writer] = max(claimed.get(writer, 0), seq)
            if head.seq >= incomplete.get(opened.writer, head.seq + 1):
                del incomplete[opened.writer]
            if found is not None:
                frontier.check(found.heads, known, opened.writer)
                if found.entries:
                    incomplete[opened.writer] = opened.seq + found.entries
                at.snapshot = cursor
                for writer, (seq, digest) in found.heads.items():
                    if writer != own_writer:
                        head_of(writer).cover(seq, digest, writer)
            at.version = max(at.version, snapshot.version(opened.body))
            if not already_applied(opened, *applied[opened.writer]):
                accepted.append(opened)
            at.cursor, at.anchor = cursor, entry.hash
            at.accepted = len(accepted)
        at.cursor = max(at.cursor, page.cursor)
        after = at.cursor
        if not page.more:
            break
    overdue.snapshot_state(store, keys, bool(incomplete))
    if incomplete and before_incomplete is not None:
        # Not all of a snapshot's state is on the relay yet (its writer is still
        # pushing): stop before its opening and read from there next time,
        # rather than adopt what it vouches for without it.
        at = before_incomplete
        del accepted[at.accepted :]
    claimed.pop(own_writer, None)
    # What other devices said they saw is recorded with the position that passed
    # it, in one transaction: a crash cannot lose a claim the cursor is past.
    with store.transaction():
        ops = commit(store, keys, at, accepted, apply) if at.cursor != start else 0
        overdue.seen_entries(store, keys, claimed)
    return PullResult(len(accepted), ops, at.cursor)


def commit(
    store: Store, keys: MailboxKeys, at: _Position, accepted: list[OpenedEntry], apply: Apply | None
) -> int:
    """Apply `accepted` and record the new position (inside a transaction); returns the ops."""
    applier = apply or (lambda e: apply_ops(store, e))
    ops = 0
    with store.transaction():
        newest = ""
        for opened in accepted:
            newest = max(newest, applier(opened))
            ops += len(opened.body.get("ops", []))
        if newest:
            store.observe(newest)
        save_position(store, keys, at.heads, at.cursor, at.snapshot, at.version, at.anchor)
        store.conn.executemany(
            "INSERT OR IGNORE INTO chain (mailbox, writer, seq, hash) VALUES (?, ?, ?, ?)",
            [(keys.hex_id, e.writer, e.seq, e.hash) for e in accepted],
        )
    return ops


def known_hash(
    store: Store, keys: MailboxKeys, table: str, seq: int, writer: bytes | None = None
) -> bytes | None:
    """The hash of an entry this device wrote (``feed_out``) or accepted (``chain``)."""
    where = "mailbox = ? AND seq = ?" + (" AND writer = ?" if writer else "")
    args = (keys.hex_id, seq, writer) if writer else (keys.hex_id, seq)
    row = store.conn.execute(f"SELECT hash FROM {table} WHERE {where}", args).fetchone()
    return bytes(row[0]) if row else None


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
    store: Store,
    keys: MailboxKeys,
    heads: dict[bytes, FeedHead],
    cursor: int,
    snapshot_at: int = 0,
    version: int = 0,
    anchor: bytes = b"",
) -> None:
    """Record the accepted feed heads and the read cursor, with the newest snapshot
    and version of operations seen and the hash of the entry at the cursor
    (inside a transaction)."""
    store.conn.executemany(
        "INSERT INTO feed_in (mailbox, writer, seq, head, floor_seq, floor_head) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (mailbox, writer) DO UPDATE SET "
        "seq = excluded.seq, head = excluded.head, "
        "floor_seq = excluded.floor_seq, floor_head = excluded.floor_head",
        [(keys.hex_id, w, h.seq, h.head, h.floor_seq, h.floor_head) for w, h in heads.items()],
    )
    store.conn.execute(
        "INSERT INTO cursors (mailbox, cursor, snapshot, version, anchor) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (mailbox) DO UPDATE SET cursor = excluded.cursor, "
        "snapshot = max(snapshot, excluded.snapshot), version = max(version, excluded.version), "
        "anchor = excluded.anchor",
        (keys.hex_id, cursor, snapshot_at, version, anchor),
    )
