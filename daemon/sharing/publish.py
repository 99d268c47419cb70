"""Publishing a share: each patient device writes what the share's mailbox lacks.

Every device of the patient keeps a merged view of the share's data mailbox
(``views``): its own entries as it writes them, its sibling devices' as it
reads them. Publishing compares the records changed since the last round
(``records.rev`` above the share's high-water mark, so an idle round reads
nothing) with that view:

- in scope, and the view does not show it or lacks a newer field write: a snap;
- out of scope (edited out, deleted, or the share narrowed) but shown: a drop.

Remote merges bump ``rev`` too, so a device publishes what another device
wrote before that device had heard of the share, or concurrently with a
narrowing; the view keeps two devices from publishing the same thing twice,
except in a race, which the merge makes harmless.
"""

from __future__ import annotations

import json
from typing import Any

from carnet.daemon.records import FIELDS
from carnet.daemon.sharing import views
from carnet.daemon.sharing.shares import Share, set_progress
from carnet.daemon.store import Store
from carnet.daemon.sync import outbox
from carnet.daemon.sync.relay_client import RelayClient
from carnet.daemon.sync.transfer import push
from carnet.protocol.envelope import Writer
from carnet.protocol.mailbox import MailboxKeys

_CHANGED = (
    f"SELECT id, {', '.join(FIELDS)}, deleted, clocks, rev FROM records WHERE rev > ? ORDER BY rev"
)


def _decide(store: Store, share: Share, row: tuple[Any, ...]) -> dict[str, Any] | None:
    """The operation `row` (a changed record) needs in `share`, if any (in a transaction)."""
    record = dict(zip(("id", *FIELDS), row, strict=False))
    deleted, clocks = row[len(FIELDS) + 1], json.loads(row[len(FIELDS) + 2])
    shown = views.row(store, share.id, record["id"])
    if not deleted and share.scope.matches(record):
        if shown is None or not shown.shown or shown.behind(clocks):
            return views.snapshot_op(record["id"], record, clocks, store.stamp())
    elif shown is not None and shown.shown:
        return views.drop_op(record["id"], store.stamp())
    return None


def plan(store: Store, share: Share, keys: MailboxKeys, writer: Writer) -> int:
    """Seal what `share` lacks as this device's next entries; returns the operations."""
    with store.transaction():
        rows = store.conn.execute(_CHANGED, (share.progress.hwm,)).fetchall()
        ops = []
        for row in rows:
            op = _decide(store, share, row)
            if op is not None:
                views.apply_op(store, share.id, op)
                ops.append(json.dumps(op, separators=(",", ":"), ensure_ascii=False))
        outbox.seal_ops(store, keys, writer, ops)
        if rows:
            set_progress(store, share, hwm=rows[-1][-1])
    return len(ops)


async def publish(
    store: Store, relay: RelayClient, share: Share, keys: MailboxKeys, writer: Writer
) -> int:
    """Plan and push; returns the entries pushed. ``MailboxGone`` if the share is gone."""
    plan(store, share, keys, writer)
    return await push(store, relay, keys, create=None)
