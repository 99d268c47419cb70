"""Merging concurrent edits: per-field last-writer-wins registers, by HLC stamp.

Every field of a record, and its tombstone ``deleted``, is a register holding a
value and the stamp of its last write. Merging keeps, per register, the write
with the greater stamp, so devices that saw the same writes in any order end
with the same record. A delete beats every edit older than it; an edit made
after the delete (on a device that had not seen it) brings the record back,
so no write is lost.
"""

from __future__ import annotations

from typing import Any

Register = tuple[Any, str]  # (value, encoded stamp)
TOMBSTONE = "deleted"


def merge(values: dict[str, Any], clocks: dict[str, str], incoming: dict[str, Register]) -> bool:
    """Fold `incoming` writes into `values`/`clocks` in place; True if anything changed."""
    changed = False
    for name, (value, stamp) in incoming.items():
        if stamp > clocks.get(name, ""):
            clocks[name] = stamp
            values[name] = value
            changed = True
    return changed


def is_deleted(clocks: dict[str, str]) -> bool:
    """Deleted iff a tombstone was written after every other field's last write."""
    tombstone = clocks.get(TOMBSTONE)
    if tombstone is None:
        return False
    return tombstone > max((s for n, s in clocks.items() if n != TOMBSTONE), default="")
