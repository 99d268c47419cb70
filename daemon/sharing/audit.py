"""The audit log: what was shared, with whom, and what was refused, hash-chained.

Each device keeps the events in the order it learned them. Every event carries
``hash = BLAKE2b(prev hash || canonical event)``, so altering, inserting or
removing an event in the middle breaks every hash after it, and ``verify``
says where. Events are synced to the identity's other devices as vault
operations (``{"t": "audit", ...}``); a device appends those it does not have,
by event id, to its own chain. Events that every device derives by itself
(a device joined, a note arrived) get an id derived from what they are about,
so they are logged once however many devices see them.

The chain is tamper-*evident*, not tamper-proof: someone who can rewrite the
store can recompute it. The copies on the other devices, and the signed vault
entries they came from, are what such a rewrite cannot reach.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from nacl.utils import random

from carnet.daemon.records import now_iso
from carnet.daemon.store import Store
from carnet.protocol.envelope import GENESIS
from carnet.protocol.kdf import digest

# Event kinds, as `carnet log` shows them.
SHARE_MADE = "share made"
SHARE_NARROWED = "share narrowed"
SHARE_EXPIRED = "share expired"
SHARE_REVOKED = "share revoked"
SHARE_RECEIVED = "share received"
SHARE_ENDED = "share ended"
NOTE_RECEIVED = "note received"
NOTE_SENT = "note sent"
DEVICE_ADDED = "device added"
CONTACT_PINNED = "contact pinned"
KEY_CHANGE = "key change"
REFUSED_ENTRY = "refused entry"


@dataclass(frozen=True)
class Event:
    seq: int
    id: str
    at: str
    kind: str
    detail: str
    device: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def derived_id(*parts: str) -> str:
    """The id of an event every device derives alike, so that it is logged once."""
    return digest("\0".join(parts).encode(), 16).hex()


def _chain(prev: bytes, event_id: str, at: str, kind: str, detail: str, device: str) -> bytes:
    canonical = json.dumps([event_id, at, kind, detail, device], ensure_ascii=False)
    return digest(prev + canonical.encode())


def _append(store: Store, event: dict[str, str]) -> bool:
    """Chain `event` after the last one (inside a transaction); False if already logged."""
    known = store.conn.execute("SELECT 1 FROM audit WHERE id = ?", (event["id"],)).fetchone()
    if known:
        return False
    row = store.conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    prev = row[0] if row else GENESIS
    fields = (event["id"], event["at"], event["kind"], event["detail"], event["dev"])
    store.conn.execute(
        "INSERT INTO audit (id, at, kind, detail, device, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (*fields, prev, _chain(prev, *fields)),
    )
    return True


def record(
    store: Store,
    kind: str,
    detail: str,
    event_id: str | None = None,
    *,
    at: str | None = None,
    sync: bool = True,
) -> None:
    """Log an event here and, with `sync`, queue it for this identity's other devices.

    Events every device derives by itself (a device joined, a note arrived, a
    share expired) are not synced: each device logs them under the same id.
    """
    event = {
        "id": event_id or random(16).hex(),
        "at": at or now_iso(),
        "kind": kind,
        "detail": detail,
        "dev": store.device_id,
    }
    with store.transaction():
        if _append(store, event) and sync:
            store.enqueue({"t": "audit", **event})


def record_derived(store: Store, kind: str, about: str, detail: str, at: str | None = None) -> None:
    """Log an event every device of the identity derives by itself (a device joined,
    a note arrived, a share expired...): under an id derived from `kind` and
    `about`, so it is logged once per device however often it is seen, and not synced."""
    record(store, kind, detail, derived_id(kind, about), at=at, sync=False)


# The fields of an ``audit`` operation, in the order of the table's columns.
_OP_FIELDS = ("id", "at", "kind", "detail", "dev")


def apply_op(store: Store, op: dict[str, Any]) -> None:
    """An event logged by another device of this identity (inside a transaction)."""
    if all(isinstance(op.get(name), str) for name in _OP_FIELDS):
        _append(store, {name: op[name] for name in _OP_FIELDS})


def state_ops(store: Store) -> Iterator[dict[str, Any]]:
    """Every event, in order, as the operations that log it (for a snapshot)."""
    cur = store.conn.execute("SELECT id, at, kind, detail, device FROM audit ORDER BY seq")
    for row in cur:
        yield {"t": "audit", **dict(zip(_OP_FIELDS, row, strict=True))}


def events(store: Store) -> list[Event]:
    cur = store.conn.execute("SELECT seq, id, at, kind, detail, device FROM audit ORDER BY seq")
    return [Event(*row) for row in cur]


def verify(store: Store) -> int | None:
    """The sequence number of the first event whose hash does not follow, or None."""
    prev = GENESIS
    cur = store.conn.execute(
        "SELECT seq, id, at, kind, detail, device, prev, hash FROM audit ORDER BY seq"
    )
    for seq, event_id, at, kind, detail, device, stored_prev, stored_hash in cur:
        expected = _chain(prev, event_id, at, kind, detail, device)
        # Hashes are public values: an ordinary comparison is fine here.
        if bytes(stored_prev) != prev or bytes(stored_hash) != expected:
            return int(seq)
        prev = expected
    return None
