"""Reading a mailbox whose writers are not all trusted, judging one entry at a time.

The vault is read all or nothing (``daemon/sync/pull.py``): all its writers are
our own devices, so anything unverifiable is an attack and nothing is applied.
The mailboxes of sharing have writers that may legitimately be refused: anyone
holding a contact card can write to an introduction mailbox, and the patient's
devices hold the write key of the notes mailbox the doctor writes to. So:

- an entry must open (AEAD, its device's signature) and extend that device's
  chain (``seq``/``prev``, ``protocol/feed.py``), or it is refused;
- then ``judge(entry, certificate)`` says whether its author is acceptable.

A refused entry is skipped for good (the cursor moves past it), raises an
alert, is logged in the audit log (once, whichever device refuses it) and is
reported to the caller, which fails the sync round once everything else is
done. The caller applies the accepted entries and ``save``s the new position
in one transaction.

A relay restored from an older backup is noticed as in ``pull`` (its end is
behind the cursor, or the entry at the cursor changed); the mailbox is then
read again from the start, passing over what each chain already holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from nacl.signing import VerifyKey

from carnet.daemon.sharing import audit
from carnet.daemon.store import Store
from carnet.daemon.sync.pull import load_head, read_anchor, save_position
from carnet.daemon.sync.relay_client import RelayClient
from carnet.protocol.envelope import Entry, OpenedEntry, check_certificate, open_entry
from carnet.protocol.errors import AttackDetected
from carnet.protocol.feed import FeedHead
from carnet.protocol.mailbox import MailboxKeys

# (entry, its writer's certificate) -> None to accept, or the reason to refuse.
Judge = Callable[[OpenedEntry, bytes], str | None]


def certified_by(identity: VerifyKey, refusal: str) -> Judge:
    """A judge accepting the devices `identity` certified, refusing others with `refusal`."""

    def judge(entry: OpenedEntry, cert: bytes) -> str | None:
        return None if check_certificate(identity, entry.device, cert) else refusal

    return judge


@dataclass
class Followed:
    keys: MailboxKeys
    start: int
    cursor: int = 0
    accepted: list[tuple[OpenedEntry, bytes]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    heads: dict[bytes, FeedHead] = field(default_factory=dict)
    anchor: bytes = b""  # hash of the entry at `cursor`, as read
    # The relay was restored from an older backup: read again from the start,
    # passing over what each writer's chain already holds.
    rereading: bool = False

    @property
    def moved(self) -> bool:
        return self.cursor != self.start or self.rereading

    def save(self, store: Store) -> None:
        """Record the new position (inside the transaction applying `accepted`)."""
        save_position(store, self.keys, self.heads, self.cursor, anchor=self.anchor)

    def head(self, store: Store, writer: bytes) -> FeedHead:
        if writer not in self.heads:
            self.heads[writer] = load_head(store, self.keys, writer)
        return self.heads[writer]


def _open(followed: Followed, store: Store, entry: Entry) -> tuple[OpenedEntry, bytes]:
    """Open `entry` and advance its writer's chain over it; raises AttackDetected."""
    certs: list[bytes] = []

    def note_certificate(device: bytes, cert: bytes) -> bool:
        certs.append(cert)
        return True  # authorship is judged after the signature and the chain

    opened = open_entry(followed.keys, entry, note_certificate)
    advanced = replace(followed.head(store, opened.writer))
    advanced.accept(opened)
    followed.heads[opened.writer] = advanced
    return opened, certs[-1]


def _refuse(followed: Followed, store: Store, what: str, entry: Entry, reason: str) -> None:
    message = f"{what}: {reason}"
    followed.refused.append(message)
    store.add_alert(message)
    event = audit.derived_id(audit.REFUSED_ENTRY, followed.keys.hex_id, entry.hash.hex())
    audit.record(store, audit.REFUSED_ENTRY, message, event)


async def follow(
    store: Store,
    relay: RelayClient,
    keys: MailboxKeys,
    own_writer: bytes | None,
    judge: Judge,
    what: str,
) -> Followed:
    """Read the entries after the stored cursor; `what` names the mailbox in messages.

    Entries by `own_writer` are skipped (applied when written); with None, this
    device's own entries are judged like any other.
    """
    start, anchor = read_anchor(store, keys)
    followed = Followed(keys, start, start, anchor=anchor)
    # Read from the last entry read, to see that it is still the same (as in pull).
    after = start - 1 if anchor else start
    while True:
        page = await relay.read(keys, after)
        restored = page.cursor < after
        for cursor, entry in page.entries:
            if cursor == start and anchor and not followed.rereading:
                restored = entry.hash != anchor
                if restored:
                    break
                continue
            followed.cursor, followed.anchor = cursor, entry.hash
            if entry.writer == own_writer:
                continue  # our own entries: applied when written
            if followed.rereading and entry.seq <= followed.head(store, entry.writer).seq:
                continue  # taken (or refused) before the relay lost it
            try:
                opened, cert = _open(followed, store, entry)
            except AttackDetected as exc:
                _refuse(followed, store, what, entry, str(exc))
                continue
            reason = judge(opened, cert)
            if reason is None:
                followed.accepted.append((opened, cert))
            else:
                _refuse(followed, store, what, entry, reason)
        if restored and not followed.rereading:
            # Its writers send their entries again, under cursors this device may
            # have passed already: read everything again, and take only what is new.
            followed.rereading, followed.cursor, followed.anchor, after = True, 0, b"", 0
            continue
        followed.cursor = max(followed.cursor, page.cursor)
        after = followed.cursor
        if not page.more:
            return followed
