"""A share mailbox's contents, merged the same way on both sides.

The entries of a share's data mailbox carry operations (``{"ops": [...]}``):

- ``{"t": "snap", "id": ID, "f": {field: [value, stamp], ...}, "v": stamp}``: every
  field register of an in-scope record (the tombstone excepted), and "shown" as of ``v``;
- ``{"t": "drop", "id": ID, "v": stamp}``: the record left the scope as of ``v``.
  It carries no field, so a record edited out of scope leaks nothing of its new state.

Fields merge as in the vault (last writer wins per register, by HLC stamp).
"Shown" is one more register, written by snaps and drops with a fresh stamp of
the publishing device: the patient's devices publish concurrently, and the
verdict must not depend on the order their entries arrive in.

The practitioner merges into ``share_records`` to read the records; each
patient device merges the same operations into its own ``share_records`` row
set, to know what is already published and publish only the difference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from carnet.daemon.merge import Register, merge
from carnet.daemon.records import FIELDS, start_timestamp
from carnet.daemon.sharing.follow import Judge, follow
from carnet.daemon.store import Store
from carnet.daemon.sync.relay_client import RelayClient
from carnet.protocol.mailbox import MailboxKeys

# Every field of the record; the tombstone is not one (a deleted record is dropped).
SHARED_FIELDS = FIELDS


@dataclass(frozen=True)
class ViewRow:
    values: dict[str, Any]
    clocks: dict[str, str]
    shown: bool
    shown_stamp: str

    def behind(self, clocks: dict[str, str]) -> bool:
        """Whether a record with these field `clocks` has writes this view lacks."""
        return any(clocks.get(n, "") > self.clocks.get(n, "") for n in SHARED_FIELDS)


def snapshot_op(record_id: str, values: dict[str, Any], clocks: dict[str, str], stamp: str) -> dict:
    registers = {n: [values[n], clocks[n]] for n in SHARED_FIELDS if n in clocks}
    return {"t": "snap", "id": record_id, "f": registers, "v": stamp}


def drop_op(record_id: str, stamp: str) -> dict:
    return {"t": "drop", "id": record_id, "v": stamp}


def row(store: Store, share_id: str, record_id: str) -> ViewRow | None:
    found = store.conn.execute(
        "SELECT vals, clocks, shown, shown_stamp FROM share_records WHERE share = ? AND record = ?",
        (share_id, record_id),
    ).fetchone()
    if found is None:
        return None
    return ViewRow(json.loads(found[0]), json.loads(found[1]), bool(found[2]), found[3])


def _registers(op: dict[str, Any]) -> dict[str, Register]:
    """The well-formed field registers of a snap; anything else in it is ignored."""
    fields = op.get("f")
    if not isinstance(fields, dict):
        return {}
    return {
        name: (reg[0], reg[1])
        for name, reg in fields.items()
        if name in SHARED_FIELDS
        and isinstance(reg, list)
        and len(reg) == 2
        and isinstance(reg[0], str)
        and isinstance(reg[1], str)
    }


def apply_op(store: Store, share_id: str, op: dict[str, Any]) -> bool:
    """Merge one snap or drop into the view (inside a transaction); True if it changed."""
    kind, record_id, stamp = op.get("t"), op.get("id"), op.get("v")
    if kind not in ("snap", "drop") or not isinstance(record_id, str) or not isinstance(stamp, str):
        return False
    current = row(store, share_id, record_id) or ViewRow({}, {}, False, "")
    values, clocks = dict(current.values), dict(current.clocks)
    changed = merge(values, clocks, _registers(op)) if kind == "snap" else False
    shown, shown_stamp = current.shown, current.shown_stamp
    if stamp > shown_stamp:
        shown, shown_stamp = kind == "snap", stamp
        changed = True
    if changed:
        store.conn.execute(
            "INSERT OR REPLACE INTO share_records (share, record, vals, clocks, shown, shown_stamp)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (share_id, record_id, json.dumps(values), json.dumps(clocks), int(shown), shown_stamp),
        )
    return changed


def shown_records(store: Store, share_id: str) -> list[dict[str, Any]]:
    """The records a share currently shows, as record dicts (id first, then FIELDS)."""
    cur = store.conn.execute(
        "SELECT record, vals FROM share_records WHERE share = ? AND shown = 1", (share_id,)
    )
    rows = []
    for record_id, vals in cur:
        values = json.loads(vals)
        rows.append({"id": record_id, **{n: values.get(n, "") for n in FIELDS}})
    return sorted(rows, key=start_order)


def start_order(record: dict[str, Any]) -> tuple[float, str]:
    """Sort key of records by start time (a malformed start sorts first)."""
    try:
        return start_timestamp(record), record["id"]
    except ValueError:  # rather than failing the whole listing
        return float("-inf"), record["id"]


def count_shown(store: Store, share_id: str) -> int:
    return int(
        store.conn.execute(
            "SELECT count(*) FROM share_records WHERE share = ? AND shown = 1", (share_id,)
        ).fetchone()[0]
    )


async def read(
    store: Store,
    relay: RelayClient,
    share_id: str,
    keys: MailboxKeys,
    own_writer: bytes | None,
    judge: Judge,
) -> tuple[int, list[str]]:
    """Merge a share mailbox's new entries into the view; returns (entries read, refusals).

    ``MailboxGone`` (revoked or expired) propagates to the caller.
    """
    followed = await follow(store, relay, keys, own_writer, judge, f"share {share_id[:8]}")
    if followed.moved:
        with store.transaction():
            for entry, _ in followed.accepted:
                for op in entry.body.get("ops", []):
                    if isinstance(op, dict):
                        apply_op(store, share_id, op)
            followed.save(store)
    return len(followed.accepted), followed.refused
