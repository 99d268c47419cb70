"""What the relay should have shown by now, said once after a wait.

A reader learns of entries that must be on the relay before it is shown them:

- the entries of state that follow a snapshot's opening (``protocol/snapshot.py``);
- the entries of other writers that a device says it has seen (``"seen"``,
  ``protocol/frontier.py``): that device read them from the relay before it
  wrote, so the relay holds them, under earlier cursors.

From an honest relay they arrive within moments, or as soon as their writer,
offline in the middle of sending them or after the relay lost them, sends them
again. After WAIT seconds the device alerts, once: that is how a relay that
withholds a writer's newest entries (a freeze) shows, as long as the person
has another device writing.
"""

from __future__ import annotations

import time

from carnet.daemon.store import Store
from carnet.protocol.mailbox import MailboxKeys

WAIT = 600


def _said_once(store: Store, key: str, missing: bool, message: str) -> None:
    """Start, keep or stop waiting for `key` (a meta key); alert once when overdue."""
    waiting = store.get_meta(key)
    if not missing:
        if waiting is not None:
            with store.transaction():
                store.conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        return
    if waiting is None:
        with store.transaction():
            store.set_meta(key, f"{time.time()},0")
        return
    since, said = waiting.split(",")
    if said == "0" and time.time() - float(since) > WAIT:
        with store.transaction():
            store.add_alert(message)
            store.set_meta(key, f"{since},1")


def snapshot_state(store: Store, keys: MailboxKeys, missing: bool) -> None:
    """A snapshot's state is (or is no longer) missing after its opening."""
    _said_once(
        store,
        f"overdue_snapshot:{keys.hex_id}",
        missing,
        f"a snapshot's contents have been missing from the relay for over {WAIT // 60} "
        "minutes (its device went offline while sending them, or the relay withholds "
        "them); this device reads nothing past it until they arrive",
    )


def seen_entries(store: Store, keys: MailboxKeys, claimed: dict[bytes, int]) -> None:
    """Entries of other writers that devices said they had seen, against what this
    device has been shown (its feed heads as the pull just saved them)."""
    rows = store.conn.execute(
        # `applied`: how far a chain was taken before the relay lost it (sync/outbox.py).
        "SELECT writer, expected, max(seq, floor_seq, applied) FROM feed_in WHERE mailbox = ?",
        (keys.hex_id,),
    ).fetchall()
    known = {bytes(w): (expected, shown) for w, expected, shown in rows}
    for writer in set(claimed) | {w for w, (expected, _) in known.items() if expected}:
        before, shown = known.get(writer, (0, 0))
        expected = max(before, claimed.get(writer, 0))
        missing = expected > shown
        if (expected if missing else 0) != before:
            with store.transaction():
                store.conn.execute(
                    "INSERT INTO feed_in (mailbox, writer, seq, head, expected) "
                    "VALUES (?, ?, 0, zeroblob(32), ?) ON CONFLICT (mailbox, writer) "
                    "DO UPDATE SET expected = excluded.expected",
                    (keys.hex_id, writer, expected if missing else 0),
                )
        _said_once(
            store,
            f"overdue_seen:{keys.hex_id}:{writer.hex()}",
            missing,
            f"entries another device has seen have been missing from the relay for over "
            f"{WAIT // 60} minutes (writer {writer.hex()[:8]}, up to entry {expected}): "
            "the relay withholds them, or lost them until their device sends them again",
        )
