"""The rules of an append, shared by every backend: pure functions over what a backend read.

A backend locks the mailbox, reads its totals and the heads of the batch's
writers, asks ``plan_append`` what to store, fetches the stored data of the
entries the plan calls duplicates, lets ``check_duplicates`` judge them, then
writes the plan. Keeping the rules here means SQLite and PostgreSQL cannot
disagree on what is a retry, a gap, a conflict or an overflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from carnet.protocol.envelope import Entry
from carnet.relay.storage.base import (
    EntryConflict,
    Quota,
    QuotaExceeded,
    SeqGap,
    StoredEntry,
)

Key = tuple[bytes, int]  # (writer, seq)


@dataclass(frozen=True, slots=True)
class Totals:
    """A mailbox's row: its latest cursor, and the entries and bytes it still stores."""

    latest: int
    entries: int
    bytes: int


@dataclass(slots=True)
class AppendPlan:
    totals: Totals  # after the append
    rows: list[StoredEntry] = field(default_factory=list)  # new entries, cursors allocated
    heads: dict[bytes, int] = field(default_factory=dict)  # writers whose head moved
    duplicates: list[Entry] = field(default_factory=list)  # must equal what is stored

    @property
    def appended(self) -> int:
        return len(self.rows)


def plan_append(
    entries: Sequence[Entry], before: Totals, heads: Mapping[bytes, int], quota: Quota
) -> AppendPlan:
    """What to store for `entries`, given the mailbox's totals and its writers' stored heads.

    Raises SeqGap (a writer's seqs must continue its head), EntryConflict (two
    different entries at one (writer, seq) within the batch) or QuotaExceeded.
    """
    plan = AppendPlan(before)
    in_batch: dict[Key, bytes] = {}
    latest, count, size = before.latest, before.entries, before.bytes
    for entry in entries:
        head = plan.heads.get(entry.writer, heads.get(entry.writer, 0))
        if entry.seq <= head:
            earlier = in_batch.get((entry.writer, entry.seq))
            if earlier is None:
                plan.duplicates.append(entry)  # a retry of a stored entry, to be checked
            elif earlier != entry.data:
                raise _conflict(entry)
            continue
        if entry.seq != head + 1:
            raise SeqGap(
                f"entry {entry.seq} of writer {entry.writer.hex()[:8]} does not follow"
                f" its last stored entry {head}"
            )
        latest, count, size = latest + 1, count + 1, size + len(entry.data)
        plan.heads[entry.writer] = entry.seq
        in_batch[(entry.writer, entry.seq)] = entry.data
        plan.rows.append(StoredEntry(latest, entry.writer, entry.seq, entry.data))
    if plan.rows:
        _check_quota(quota, count, size)
    plan.totals = Totals(latest, count, size)
    return plan


def check_duplicates(duplicates: Sequence[Entry], stored: Mapping[Key, bytes]) -> None:
    """Raise EntryConflict unless each duplicate equals the stored entry at its (writer, seq).

    An entry missing from `stored` was compacted away: its writer's head proves
    it was stored, and the relay no longer keeps the bytes to compare, so the
    retry is accepted (readers verify entries themselves in any case).
    """
    for entry in duplicates:
        data = stored.get((entry.writer, entry.seq))
        if data is not None and data != entry.data:
            raise _conflict(entry)


def _check_quota(quota: Quota, entries: int, size: int) -> None:
    if quota.max_entries and entries > quota.max_entries:
        raise QuotaExceeded(f"the mailbox would hold more than {quota.max_entries} entries")
    if quota.max_bytes and size > quota.max_bytes:
        raise QuotaExceeded(f"the mailbox would hold more than {quota.max_bytes} bytes")


def _conflict(entry: Entry) -> EntryConflict:
    return EntryConflict(
        f"entry {entry.seq} of writer {entry.writer.hex()[:8]} differs from the stored one"
    )
