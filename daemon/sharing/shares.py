"""The shares this identity makes: a recipient, a scope, fresh keys and an expiry.

Every share draws two fresh random mailbox secrets, never reused:

- *data*: the patient's devices write in-scope records there; the practitioner
  is given its id, entry key, writer-tag key and read capability, never its
  write capability;
- *notes* (only with ``--allow-notes``): the practitioner writes notes back; they
  are given the whole secret.

Both mailboxes are created on the relay before anything else, with a TTL equal
to the share's lifetime: the relay erases them at expiry without knowing what
they are. The definition (recipient, scope, sealed keys, expiry, revocation)
is a vault operation ``{"t": "share", ...}``, so that every device of the
patient publishes to the share and every one stops when it is revoked.

A share's mailboxes are created once, by the device making the share; a device
that finds them gone never recreates them (the share was revoked elsewhere or
expired), which closes the race between a revocation and a device that has not
heard of it yet.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from nacl.utils import random

from carnet.daemon.device import Device
from carnet.daemon.keys import Secrets
from carnet.daemon.records import now_iso
from carnet.daemon.sharing import audit, contacts, sealed, views
from carnet.daemon.sharing.scope import Scope
from carnet.daemon.store import Store
from carnet.daemon.sync.relay_client import MailboxGone, RelayClient
from carnet.protocol.errors import ShareClosed, UnknownShare, UsageError
from carnet.protocol.mailbox import MailboxKeys
from carnet.protocol.wire import MAX_TTL

ACTIVE, REVOKED, EXPIRED, ENDED = "active", "revoked", "expired", "ended"
_COLUMNS = (
    "id, alias, identity, recipient, scope, created, expires, notes, keys, revoked, relay, stamp, "
    "hwm, invite, erased, gone, ended_logged"
)


@dataclass(frozen=True)
class ShareSecrets:
    """The two mailbox secrets of one share (no notes mailbox without --allow-notes)."""

    data: bytes
    notes: bytes | None

    @classmethod
    def draw(cls, allow_notes: bool) -> ShareSecrets:
        return cls(random(32), random(32) if allow_notes else None)

    @property
    def data_keys(self) -> MailboxKeys:
        return MailboxKeys.from_secret(self.data)

    @property
    def notes_keys(self) -> MailboxKeys | None:
        return MailboxKeys.from_secret(self.notes) if self.notes else None

    def mailboxes(self) -> list[MailboxKeys]:
        return [self.data_keys, *([self.notes_keys] if self.notes_keys else [])]

    def to_json(self) -> dict[str, str | None]:
        return {"data": self.data.hex(), "notes": self.notes.hex() if self.notes else None}


@dataclass(frozen=True)
class Progress:
    """This device's own progress on a share (never synced)."""

    hwm: int = -1  # the last record revision published (-1: publish everything in scope)
    invite: int = 0  # INVITE_TO_SEAL, INVITE_TO_PUSH or 0 (none, or sent)
    erased: bool = False  # mailboxes deleted on the relay (after revocation or expiry)
    gone: bool = False  # the relay had no mailbox any more
    ended_logged: bool = False


INVITE_TO_SEAL, INVITE_TO_PUSH = 1, 2


@dataclass(frozen=True)
class Share:
    id: str
    alias: str
    identity: bytes  # the recipient's identity key, pinned when the share was made
    recipient: str  # the name on the recipient's card
    scope: Scope
    created: str
    expires: float  # Unix time
    notes: bool
    sealed_keys: str
    revoked: str  # when, or ""
    relay: str  # where its mailboxes live
    stamp: str
    progress: Progress = Progress()

    def state(self, now: float | None = None) -> str:
        if self.revoked:
            return REVOKED
        if (now if now is not None else time.time()) >= self.expires:
            return EXPIRED
        return ENDED if self.progress.gone else ACTIVE

    def secrets(self, secrets: Secrets) -> ShareSecrets:
        """The share's mailbox secrets, unsealed with this identity's vault key."""
        raw = sealed.unseal(secrets, self.id, self.sealed_keys)
        notes = raw.get("notes")
        return ShareSecrets(bytes.fromhex(raw["data"]), bytes.fromhex(notes) if notes else None)

    def to_dict(self, store: Store) -> dict[str, Any]:
        return {
            "id": self.id,
            "alias": self.alias,
            "recipient": self.recipient,
            "scope": self.scope.describe(),
            "created": self.created,
            "expires": iso(self.expires),
            "notes_allowed": self.notes,
            "state": self.state(),
            "records": views.count_shown(store, self.id),
        }


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _share(row: tuple[Any, ...]) -> Share:
    share_id, alias, identity, recipient, scope, created, expires, notes = row[:8]
    keys, revoked, relay, stamp, hwm, invite, erased, gone, ended_logged = row[8:]
    progress = Progress(int(hwm), int(invite), bool(erased), bool(gone), bool(ended_logged))
    return Share(
        share_id,
        alias,
        bytes.fromhex(identity),
        recipient,
        Scope.from_json(scope),
        created,
        float(expires),
        bool(notes),
        keys,
        revoked,
        relay,
        stamp,
        progress,
    )


def all_shares(store: Store) -> list[Share]:
    cur = store.conn.execute(f"SELECT {_COLUMNS} FROM shares_out ORDER BY created, id")
    return [_share(row) for row in cur]


def load(store: Store, share_id: str) -> Share:
    row = store.conn.execute(f"SELECT {_COLUMNS} FROM shares_out WHERE id = ?", (share_id,))
    found = row.fetchone()
    if found is None:
        raise UnknownShare(share_id)
    return _share(found)


def resolve(store: Store, target: str) -> list[Share]:
    """The active shares `target` names: a share id (or its prefix) or a contact's alias."""
    everything = all_shares(store)
    by_id = [s for s in everything if len(target) >= 6 and s.id.startswith(target)]
    chosen = by_id or [s for s in everything if s.alias == target]
    if not chosen:
        raise UnknownShare(repr(target))
    active = [s for s in chosen if s.state() == ACTIVE]
    if not active:
        raise ShareClosed(f"{target!r} has no active share")
    return active


def _op(share: Share) -> dict[str, Any]:
    return {
        "t": "share",
        "id": share.id,
        "to": share.alias,
        "ident": share.identity.hex(),
        "name": share.recipient,
        "scope": share.scope.to_json(),
        "created": share.created,
        "expires": share.expires,
        "notes": share.notes,
        "keys": share.sealed_keys,
        "revoked": share.revoked,
        "relay": share.relay,
        "s": share.stamp,
    }


def _save(store: Store, op: dict[str, Any], invite: int = 0) -> None:
    """Insert or merge a share definition (inside a transaction).

    The scope is a last-writer-wins register (a new scope is published from
    scratch: ``hwm`` back to -1); a revocation sticks whatever its stamp, so a
    concurrent narrowing on another device can never undo it.
    """
    store.conn.execute(
        "INSERT INTO shares_out (id, alias, identity, recipient, scope, created, expires, notes, "
        "keys, revoked, relay, stamp, invite) VALUES (:id, :to, :ident, :name, :scope, :created, "
        ":expires, :notes, :keys, :revoked, :relay, :s, :invite) "
        "ON CONFLICT(id) DO UPDATE SET "
        "scope = iif(excluded.stamp > stamp, excluded.scope, scope), "
        "hwm = iif(excluded.stamp > stamp AND excluded.scope != scope, -1, hwm), "
        "stamp = max(excluded.stamp, stamp), "
        "revoked = iif(revoked = '', excluded.revoked, revoked)",
        {**op, "notes": int(bool(op["notes"])), "invite": invite},
    )


def state_ops(store: Store) -> Iterator[dict[str, Any]]:
    """Every share this identity made, as the operations that make it (for a snapshot)."""
    return (_op(share) for share in all_shares(store))


def apply_op(store: Store, op: dict[str, Any]) -> str:
    """A share made, narrowed or revoked by another device (inside a transaction)."""
    try:
        Scope.from_json(str(op["scope"]))
        _save(store, {**op, "expires": float(op["expires"]), "relay": str(op["relay"])})
    except (KeyError, TypeError, ValueError):
        return ""  # malformed: skipped like an unknown kind
    return str(op["s"])


async def create(
    device: Device,
    relay: RelayClient,
    alias: str,
    scope: Scope,
    lifetime: int,
    allow_notes: bool,
) -> Share:
    """Make a share: its mailboxes first (so no device ever finds them missing), then the rest.

    The invitation and the records go out in the sync round that follows.
    """
    if not 0 < lifetime <= MAX_TTL:
        raise UsageError(f"a share lasts from 1 second to {MAX_TTL // 86400} days")
    contact = contacts.get(device.store, alias)
    if contact.card.role != "practitioner":
        raise UsageError(f"{alias!r} is not a practitioner; shares go to practitioners")
    secrets = device.unlock()
    drawn = ShareSecrets.draw(allow_notes)
    for mailbox in drawn.mailboxes():
        await relay.create(mailbox, ttl=lifetime)
    share_id = random(16).hex()
    store = device.store
    with store.transaction():
        share = Share(
            share_id,
            alias,
            contact.card.identity,
            contact.card.name,
            scope,
            now_iso(),
            time.time() + lifetime,
            allow_notes,
            sealed.seal(secrets, share_id, drawn.to_json()),
            "",
            relay.url,
            store.stamp(),
        )
        _save(store, _op(share), invite=INVITE_TO_SEAL)
        store.enqueue(_op(share))
        notes = ", notes allowed" if allow_notes else ""
        audit.record(
            store,
            audit.SHARE_MADE,
            f"{share_id[:8]} with {alias}: {scope.describe()}; until {iso(share.expires)}{notes}",
        )
    return share


def narrow(store: Store, share: Share, scope: Scope) -> Share:
    """Take records out of a share: the intersection of its scope and `scope`."""
    smaller = share.scope.narrowed(scope)
    if smaller == share.scope:
        raise UsageError(f"that leaves share {share.id[:8]} as it is ({smaller.describe()})")
    with store.transaction():
        updated = replace(share, scope=smaller, stamp=store.stamp())
        _save(store, _op(updated))
        store.enqueue(_op(updated))
        audit.record(
            store,
            audit.SHARE_NARROWED,
            f"{share.id[:8]} with {share.alias}: now {smaller.describe()}",
        )
    return load(store, share.id)


def mark_revoked(store: Store, share: Share) -> Share:
    """Revoke on every device of this identity: none publishes to the share again."""
    with store.transaction():
        updated = replace(share, revoked=now_iso(), stamp=store.stamp())
        _save(store, _op(updated))
        store.enqueue(_op(updated))
        audit.record(store, audit.SHARE_REVOKED, f"{share.id[:8]} with {share.alias}")
    return load(store, share.id)


def set_progress(store: Store, share: Share, **changes: int) -> None:
    """Record this device's progress on `share` (nested in the caller's transaction if any)."""
    columns = ", ".join(f"{name} = :{name}" for name in changes)
    with store.transaction():
        store.conn.execute(
            f"UPDATE shares_out SET {columns} WHERE id = :id", {**changes, "id": share.id}
        )


def forget_mailboxes(store: Store, mailboxes: list[MailboxKeys]) -> None:
    """Drop what this device kept about mailboxes that are gone for good."""
    with store.transaction():
        for keys in mailboxes:
            for table in ("feed_out", "feed_in", "cursors", "chain"):
                store.conn.execute(f"DELETE FROM {table} WHERE mailbox = ?", (keys.hex_id,))


async def erase(store: Store, relay: RelayClient, secrets: Secrets, share: Share) -> None:
    """Delete a revoked or expired share's mailboxes on the relay (idempotent)."""
    mailboxes = share.secrets(secrets).mailboxes()
    for keys in mailboxes:
        # Already gone: erased by another device, or by the relay at expiry.
        with contextlib.suppress(MailboxGone):
            await relay.delete(keys)
    forget_mailboxes(store, mailboxes)
    set_progress(store, share, erased=1)
