"""What a writer has seen of the other writers' chains, carried in its entries.

Every entry a device seals with operations carries ``"seen"``: for each other
writer of the mailbox whose entries it has accepted, the ``(seq, hash)`` of the
newest one::

    "seen": {writer tag hex: [seq, entry hash hex], ...}

The relay cannot alter it (it is inside the signed ciphertext). A reader that
knows the hash of that writer's entry at that sequence number compares them:
different hashes mean the relay showed the two devices different histories of
that writer, a fork (``ForkedFeed``). This is what makes a relay that forks a
feed, showing each device a consistent history of its own, detectable as soon
as the devices' entries cross. A snapshot's opening vouches for heads in the
same form (``protocol/snapshot.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from carnet.protocol.envelope import GENESIS
from carnet.protocol.errors import ForkedFeed
from carnet.protocol.mailbox import WRITER_TAG_BYTES

Heads = dict[bytes, tuple[int, bytes]]
# The hash of a writer's entry at a sequence number, if this reader knows it.
Known = Callable[[bytes, int], bytes | None]


def encode(heads: Heads) -> dict[str, list[Any]]:
    return {w.hex(): [seq, h.hex()] for w, (seq, h) in sorted(heads.items())}


def decode(value: object) -> Heads | None:
    """Heads in the form ``encode`` writes; None if `value` is anything else."""
    if not isinstance(value, dict):
        return None
    heads: Heads = {}
    try:
        for writer, (seq, head) in value.items():
            tag, digest = bytes.fromhex(writer), bytes.fromhex(head)
            well_formed = len(tag) == WRITER_TAG_BYTES and len(digest) == len(GENESIS)
            if not well_formed or type(seq) is not int or seq < 1:
                return None
            heads[tag] = (seq, digest)
    except (TypeError, ValueError):
        return None
    return heads


def seen(body: dict[str, Any]) -> Heads:
    """What the body's writer had seen (nothing, if it says nothing well-formed)."""
    return decode(body.get("seen")) or {}


def check(heads: Heads, known: Known, by: bytes) -> None:
    """Raise ForkedFeed if `heads` (seen by writer `by`) contradict a known hash."""
    for writer, (seq, digest) in heads.items():
        mine = known(writer, seq)
        if mine is not None and mine != digest:
            raise ForkedFeed(
                f"(writer {writer.hex()[:8]}, entry {seq}, as seen by writer {by.hex()[:8]})"
            )
