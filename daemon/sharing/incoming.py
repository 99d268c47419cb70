"""The practitioner's side: invitations in, shared records kept per share, patients.

Every device of a practitioner identity reads the identity's introduction
mailbox. It accepts an invitation only if the invitation opens with the
identity's box key, the device that wrote it is certified by the identity the
invitation names, and that identity is a pinned contact. Anything else is
refused (alert and audit log); an invitation naming a pinned contact's name but
signed under other keys is also logged as a key change. An accepted share is
stored with its keys sealed, and synced to the practitioner's other devices
(vault operation ``{"t": "incoming", ...}``).

Shared records live in ``share_records`` under their share, never among the
practitioner's own records; only the patient's devices' entries change them.
When a share's mailbox disappears (revoked, or expired) the copies stay.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from nacl.public import PrivateKey
from nacl.signing import VerifyKey

from carnet.daemon.config import Config
from carnet.daemon.keys import Secrets
from carnet.daemon.records import now_iso
from carnet.daemon.sharing import audit, cards, contacts, invitations, sealed, views
from carnet.daemon.sharing.contacts import Contact
from carnet.daemon.sharing.follow import Judge, certified_by, follow
from carnet.daemon.sharing.invitations import Invitation
from carnet.daemon.sharing.relays import Relays
from carnet.daemon.sharing.shares import iso
from carnet.daemon.store import Store
from carnet.daemon.sync.relay_client import MailboxGone, RelayClient
from carnet.daemon.sync.transfer import ensuring_mailbox
from carnet.protocol.envelope import OpenedEntry, check_certificate
from carnet.protocol.errors import UnknownContact

_COLUMNS = "id, alias, identity, patient, scope, received, expires, notes, relay, keys, gone"


@dataclass(frozen=True)
class IncomingShare:
    id: str
    alias: str
    identity: bytes
    patient: str
    scope: str
    received: str
    expires: float
    notes: bool
    relay: str
    sealed_keys: str
    gone: bool

    def state(self, now: float | None = None) -> str:
        if (now if now is not None else time.time()) >= self.expires:
            return "expired"
        return "ended" if self.gone else "active"

    def invitation(self, secrets: Secrets) -> Invitation:
        return Invitation.from_json(sealed.unseal(secrets, self.id, self.sealed_keys))


def all_incoming(store: Store) -> list[IncomingShare]:
    cur = store.conn.execute(f"SELECT {_COLUMNS} FROM shares_in ORDER BY received DESC, id")
    return [
        IncomingShare(
            row[0],
            row[1],
            bytes.fromhex(row[2]),
            *row[3:6],
            float(row[6]),
            bool(row[7]),
            row[8],
            row[9],
            bool(row[10]),
        )
        for row in cur
    ]


def _save(store: Store, op: dict[str, Any]) -> bool:
    """Store an accepted share (inside a transaction); False if it was known already."""
    cur = store.conn.execute(
        f"INSERT OR IGNORE INTO shares_in ({_COLUMNS}) VALUES (:id, :alias, :ident, :patient, "
        ":scope, :received, :expires, :notes, :relay, :keys, 0)",
        {**op, "notes": int(bool(op["notes"])), "expires": float(op["expires"])},
    )
    if cur.rowcount == 0:
        return False
    notes = ", notes allowed" if op["notes"] else ""
    audit.record_derived(
        store,
        audit.SHARE_RECEIVED,
        op["id"],
        f"{op['id'][:8]} from {op['alias']}: {op['scope']}; until {iso(float(op['expires']))}"
        f"{notes}",
    )
    return True


def apply_op(store: Store, op: dict[str, Any]) -> str:
    """A share another device of this practitioner accepted (inside a transaction)."""
    with contextlib.suppress(KeyError, TypeError, ValueError):  # malformed: skipped
        _save(store, op)
    return ""


def _op(share: IncomingShare) -> dict[str, Any]:
    return {
        "t": "incoming",
        "id": share.id,
        "alias": share.alias,
        "ident": share.identity.hex(),
        "patient": share.patient,
        "scope": share.scope,
        "received": share.received,
        "expires": share.expires,
        "notes": share.notes,
        "relay": share.relay,
        "keys": share.sealed_keys,
    }


def state_ops(store: Store) -> Iterator[dict[str, Any]]:
    """Every share this practitioner accepted, as the operations that make it (for a snapshot)."""
    return (_op(share) for share in all_incoming(store))


def _accept(store: Store, secrets: Secrets, invitation: Invitation, contact: Contact) -> None:
    share = IncomingShare(
        id=invitation.share_id,
        alias=contact.alias,
        identity=invitation.identity,
        patient=contact.card.name,
        scope=invitation.scope,
        received=now_iso(),
        expires=invitation.expires,
        notes=invitation.notes_secret is not None,
        relay=invitation.relay,
        sealed_keys=sealed.seal(secrets, invitation.share_id, invitation.to_json()),
        gone=False,
    )
    op = _op(share)
    if _save(store, op):
        store.enqueue(op)


def _judge_invitation(
    store: Store, config: Config, box: PrivateKey, found: dict[bytes, tuple[Invitation, Contact]]
) -> Judge:
    def judge(entry: OpenedEntry, cert: bytes) -> str | None:
        try:
            invitation = invitations.unseal(box, entry.body)
        except ValueError as exc:
            return str(exc)
        if not check_certificate(VerifyKey(invitation.identity), entry.device, cert):
            return "an invitation not written by a device of the identity it names"
        contact = contacts.by_identity(store, invitation.identity)
        if contact is None:
            look_alike = contacts.namesake(store, invitation.name, invitation.identity)
            if look_alike is not None:
                offered = f"identity key {invitation.identity.hex()[:16]}"
                contacts.log_key_change(store, look_alike, offered, "an invitation")
                return f"an invitation in the name of {look_alike.alias} under other keys"
            return "an invitation from someone who is not a pinned contact"
        if config.role != "practitioner":
            return "an invitation to an identity that is not a practitioner's"
        found[entry.hash] = (invitation, contact)
        return None

    return judge


async def receive(
    store: Store, relay: RelayClient, secrets: Secrets, config: Config
) -> tuple[int, list[str]]:
    """Read our introduction mailbox; returns (invitations accepted, refusals)."""
    keys = cards.intro_mailbox(secrets)
    found: dict[bytes, tuple[Invitation, Contact]] = {}
    judge = _judge_invitation(store, config, cards.box_key(secrets), found)
    followed = await ensuring_mailbox(
        store, relay, keys, lambda: follow(store, relay, keys, None, judge, "introduction mailbox")
    )
    if followed.moved:
        with store.transaction():
            for entry, _ in followed.accepted:
                _accept(store, secrets, *found[entry.hash])
            followed.save(store)
    return len(followed.accepted), followed.refused


async def read_share(
    store: Store, relays: Relays, secrets: Secrets, share: IncomingShare
) -> tuple[int, list[str]]:
    """Merge a share's new entries; returns (entries, refusals). Copies stay when it ends."""
    invitation = share.invitation(secrets)
    judge = certified_by(
        VerifyKey(share.identity), f"an entry not written by a device of {share.alias}"
    )
    try:
        return await views.read(
            store, relays.get(invitation.relay), share.id, invitation.data, None, judge
        )
    except MailboxGone:
        why = "expired" if share.state() == "expired" else "revoked by the patient"
        with store.transaction():
            store.conn.execute("UPDATE shares_in SET gone = 1 WHERE id = ?", (share.id,))
            audit.record_derived(
                store,
                audit.SHARE_ENDED,
                share.id,
                f"{share.id[:8]} from {share.alias}: {why}; the copies received stay here",
            )
        return 0, []


def patients(store: Store) -> list[dict[str, Any]]:
    """One row per patient who shared with this identity."""
    rows: dict[str, dict[str, Any]] = {}
    for share in all_incoming(store):
        row = rows.setdefault(
            share.alias,
            {"alias": share.alias, "name": share.patient, "shares": 0, "active": 0, "records": 0},
        )
        row["shares"] += 1
        row["active"] += share.state() == "active"
    for alias, row in rows.items():
        row["records"] = len(shared_records(store, alias))
    return sorted(rows.values(), key=lambda r: r["alias"])


def shared_records(store: Store, alias: str | None = None) -> list[dict[str, Any]]:
    """Records shared with this identity, each with its `patient` (the alias).

    A record in several shares of one patient appears once, from the newest share.
    """
    shares = all_incoming(store)
    if alias is not None and not any(s.alias == alias for s in shares):
        raise UnknownContact(f"{alias!r} has shared nothing with you")
    seen: set[tuple[str, str]] = set()
    out: list[dict[str, Any]] = []
    for share in shares:
        if alias is not None and share.alias != alias:
            continue
        for record in views.shown_records(store, share.id):
            if (share.alias, record["id"]) not in seen:
                seen.add((share.alias, record["id"]))
                out.append({**record, "patient": share.alias})
    return sorted(out, key=views.start_order)


def find_record(store: Store, record_id: str) -> list[IncomingShare]:
    """The shares (newest first) that show `record_id`."""
    return [
        share
        for share in all_incoming(store)
        if (row := views.row(store, share.id, record_id)) is not None and row.shown
    ]


def listing(store: Store, alias: str | None, practitioner: bool) -> list[dict[str, Any]]:
    """What `carnet list` shows: one's own records, and for a practitioner the shared ones.

    With `alias`, only that patient's shared records. On a practitioner's
    listing every row has a `patient`: the patient's alias, or None for their own.
    """
    if alias is not None:
        return shared_records(store, alias)
    own = store.list()
    if not practitioner:
        return own
    rows = [{**record, "patient": None} for record in own] + shared_records(store)
    return sorted(rows, key=views.start_order)
