"""Notes a practitioner writes back on a shared record, verified by the patient's devices.

A share made with ``--allow-notes`` has a notes mailbox, whose whole secret the
practitioner holds. ``carnet note RECORD TEXT`` appends to it an ordinary entry
``{"note": {"record": id, "text": text, "at": time}}``, written by one of the
practitioner's devices and carrying its certificate.

Every device of the patient reads the notes mailbox itself and accepts an
entry only if its writer is certified by the identity pinned for the
recipient when the share was made (the patient's own devices hold the key too,
and cannot forge a note), and if it names a record the share shows. A note is
text beside the record: it never touches the record's fields, which only the
patient's devices write. ``carnet show`` lists the notes under
``practitioner_notes``. The vault carries no notes: a ``note`` operation there
is an unknown kind and ignored.
"""

from __future__ import annotations

from typing import Any

from nacl.signing import VerifyKey

from carnet.daemon.keys import Secrets
from carnet.daemon.records import TEXT_LIMIT, now_iso
from carnet.daemon.sharing import audit, incoming, views
from carnet.daemon.sharing.follow import follow
from carnet.daemon.sharing.incoming import IncomingShare
from carnet.daemon.sharing.relays import Relays
from carnet.daemon.sharing.shares import Share, forget_mailboxes
from carnet.daemon.store import Store
from carnet.daemon.sync import outbox
from carnet.daemon.sync.relay_client import MailboxGone, RelayClient
from carnet.daemon.sync.transfer import push
from carnet.protocol.envelope import OpenedEntry, check_certificate
from carnet.protocol.errors import ShareClosed, UnknownRecord, UsageError
from carnet.protocol.mailbox import MailboxKeys


def _text(text: str) -> str:
    text = text.strip()
    if not text or len(text) > TEXT_LIMIT or "\x00" in text:
        raise UsageError(f"a note is 1 to {TEXT_LIMIT} characters of text")
    return text


async def write(
    store: Store, relays: Relays, secrets: Secrets, record_id: str, text: str
) -> IncomingShare:
    """Send a note on a shared record to the patient (practitioner side)."""
    text = _text(text)
    shares = incoming.find_record(store, record_id)
    if not shares:
        raise UnknownRecord(f"{record_id} (no patient shares it with you)")
    usable = [share for share in shares if share.notes and share.state() == "active"]
    if not usable:
        raise ShareClosed("the patient did not allow notes on it, or the share ended")
    share = usable[0]
    invitation = share.invitation(secrets)
    keys = invitation.notes
    assert keys is not None  # share.notes says the invitation had the secret
    body = {"note": {"record": record_id, "text": text, "at": now_iso()}}
    with store.transaction():
        outbox.append_own(store, keys, secrets.writer, body)
    try:
        await push(store, relays.get(invitation.relay), keys, create=None)
    except MailboxGone:
        forget_mailboxes(store, [keys])
        raise ShareClosed("the share was revoked or has expired; the note was not sent") from None
    audit.record(store, audit.NOTE_SENT, f"on record {record_id[:8]} shared by {share.alias}")
    return share


def _note(body: dict[str, Any]) -> dict[str, str] | None:
    note = body.get("note")
    if not isinstance(note, dict) or set(note) != {"record", "text", "at"}:
        return None
    if not all(isinstance(value, str) for value in note.values()):
        return None
    if not note["text"].strip() or len(note["text"]) > TEXT_LIMIT:
        return None
    return note


async def read(
    store: Store, relay: RelayClient, share: Share, keys: MailboxKeys
) -> tuple[int, list[str]]:
    """Accept the practitioner's new notes on `share` (patient side): (notes, refusals)."""
    pinned = VerifyKey(share.identity)
    accepted: dict[bytes, dict[str, str]] = {}

    def judge(entry: OpenedEntry, cert: bytes) -> str | None:
        if not check_certificate(pinned, entry.device, cert):
            return f"a note not written by {share.alias} (forged)"
        note = _note(entry.body)
        if note is None:
            return "a malformed note"
        shown = views.row(store, share.id, note["record"])
        if shown is None or not shown.shown:
            return "a note on a record this share does not show"
        accepted[entry.hash] = note
        return None

    followed = await follow(store, relay, keys, None, judge, f"notes of share {share.id[:8]}")
    if followed.moved:
        with store.transaction():
            for entry, _ in followed.accepted:
                _keep(store, share, entry.hash, accepted[entry.hash])
            followed.save(store)
    return len(followed.accepted), followed.refused


def _keep(store: Store, share: Share, entry_hash: bytes, note: dict[str, str]) -> None:
    store.conn.execute(
        "INSERT OR IGNORE INTO practitioner_notes (id, share, record, author, author_name, text, "
        "at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            entry_hash.hex(),
            share.id,
            note["record"],
            share.alias,
            share.recipient,
            note["text"],
            note["at"],
        ),
    )
    audit.record_derived(
        store,
        audit.NOTE_RECEIVED,
        entry_hash.hex(),
        f"from {share.alias} on record {note['record'][:8]}",
    )


def _text_at(note: dict[str, str]) -> tuple[str, str]:
    return note["text"].strip(), note["at"]


def notes_for(store: Store, record_id: str) -> list[dict[str, str]]:
    """The verified practitioner notes on one of the patient's records, oldest first."""
    cur = store.conn.execute(
        "SELECT author_name, author, text, at FROM practitioner_notes WHERE record = ? "
        "ORDER BY at, id",
        (record_id,),
    )
    return [
        {"author": name, "contact": alias, "text": text, "at": at} for name, alias, text, at in cur
    ]
