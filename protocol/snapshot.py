"""Snapshots: what lets a writer compact a mailbox's history away.

A snapshot is a run of ordinary entries of one writer's feed, signed and
sealed like any other. The first one *opens* it::

    body = {"ops": [], "v": n, "snap": {"heads": {writer tag hex: [seq, entry hash hex], ...},
                                        "entries": count}}

and the ``entries`` entries after it carry the writer's whole state as
ordinary operations. ``heads`` are the other writers' chain heads whose
history that state includes; the writer's own history before the opening is
included too. Once every entry before the opening is covered, the writer may
compact them away (``daemon/sync/snapshot.py``); a reader with no history
accepts the opening after a gap, and the other writers' entries from those
heads on (``protocol/feed.py``), once the whole state has arrived.

Every body also says which version of the operations its writer knows (``v``,
absent meaning 1): a device compacts only history written by versions it
knows, as a snapshot keeps only what its writer understood.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carnet.protocol import frontier
from carnet.protocol.frontier import Heads

# The operation kinds and fields this version writes and understands.
OPS_VERSION = 1


@dataclass(frozen=True)
class Opening:
    heads: Heads
    entries: int  # of state, right after the opening in its writer's feed


def opening(heads: Heads, entries: int) -> dict[str, Any]:
    """The body of a snapshot's first entry, vouching for `heads`."""
    snap = {"heads": frontier.encode(heads), "entries": entries}
    return {"ops": [], "v": OPS_VERSION, "snap": snap}


def version(body: dict[str, Any]) -> int:
    """The version of the operations the body's writer knows."""
    found = body.get("v", 1)
    return found if type(found) is int else 1


def parse(body: dict[str, Any]) -> Opening | None:
    """The snapshot `body` opens; None if it opens none.

    A malformed opening is none: its gap is then refused as a missing entry.
    """
    snap = body.get("snap")
    if not isinstance(snap, dict):
        return None
    entries, heads = snap.get("entries"), frontier.decode(snap.get("heads"))
    if heads is None or type(entries) is not int or entries < 0:
        return None
    return Opening(heads, entries)
