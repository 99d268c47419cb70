"""Snapshots: what lets a writer compact a mailbox's history away.

A snapshot is a run of ordinary entries of one writer's feed, signed and
sealed like any other. The first one *opens* it::

    body = {"ops": [], "snap": {"heads": {writer tag hex: [seq, entry hash hex], ...}}}

and the entries after it carry the writer's whole state as ordinary operations.
``heads`` are the other writers' chain heads whose history that state
includes; the writer's own history before the opening is included too. Once
every entry before the opening is covered, the writer may compact them away
(``daemon/sync/snapshot.py``), and a reader with no history accepts the
opening after a gap and the other writers' entries from those heads on
(``protocol/feed.py``).
"""

from __future__ import annotations

from typing import Any

from carnet.protocol.envelope import GENESIS
from carnet.protocol.mailbox import WRITER_TAG_BYTES

Heads = dict[bytes, tuple[int, bytes]]


def opening(heads: Heads) -> dict[str, Any]:
    """The body of a snapshot's first entry, vouching for `heads`."""
    return {
        "ops": [],
        "snap": {"heads": {w.hex(): [seq, h.hex()] for w, (seq, h) in sorted(heads.items())}},
    }


def claims(body: dict[str, Any]) -> Heads | None:
    """The heads a snapshot's opening vouches for; None if `body` opens no snapshot.

    A malformed claim is no snapshot: its gap is then refused as a missing entry.
    """
    snap = body.get("snap")
    if not isinstance(snap, dict) or not isinstance(snap.get("heads"), dict):
        return None
    heads: Heads = {}
    try:
        for writer, (seq, head) in snap["heads"].items():
            tag, digest = bytes.fromhex(writer), bytes.fromhex(head)
            well_formed = len(tag) == WRITER_TAG_BYTES and len(digest) == len(GENESIS)
            if not well_formed or type(seq) is not int or seq < 1:
                return None
            heads[tag] = (seq, digest)
    except (TypeError, ValueError):
        return None
    return heads
