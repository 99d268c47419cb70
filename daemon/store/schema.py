"""The device store's schema, as sqlite-utils migrations (applied in order, once)."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from carnet.daemon.records import FIELDS

migrations = Migrations("carnet-device")


@migrations()
def m001_initial(db: Database) -> None:
    # Appointments as merged from every device; `clocks` holds the HLC stamp of
    # each field's last write (JSON), `deleted` the merged tombstone verdict.
    columns: dict[str, type] = {"id": str, **dict.fromkeys(FIELDS, str)}
    columns.update(deleted=int, start_ts=float, clocks=str)
    db["records"].create(columns, pk="id", not_null={"clocks"}, defaults={"deleted": 0})
    db["records"].create_index(["start_ts"])
    db["records"].create_index(["source"])
    # Local operations not yet sealed into an entry of this device's feed.
    db["outbox"].create({"id": int, "op": str}, pk="id")
    # This device's own sealed entries, per mailbox, kept until the relay has them.
    db["feed_out"].create(
        {"mailbox": str, "seq": int, "writer": bytes, "hash": bytes, "data": bytes, "pushed": int},
        pk=("mailbox", "seq"),
        defaults={"pushed": 0},
    )
    # The accepted head of every other writer's chain, and the read cursor, per mailbox.
    db["feed_in"].create(
        {"mailbox": str, "writer": bytes, "seq": int, "head": bytes}, pk=("mailbox", "writer")
    )
    db["cursors"].create({"mailbox": str, "cursor": int}, pk="mailbox")
    db["devices"].create({"device": str, "name": str, "added": str, "stamp": str}, pk="device")
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["alerts"].create({"id": int, "at": str, "message": str}, pk="id")


@migrations()
def m002_reminders_fired(db: Database) -> None:
    # Reminders carnetd has delivered, so that a restart never repeats one. Keyed
    # by the start they announced: an appointment that moves is reminded again.
    db["reminders_fired"].create(
        {"record": str, "lead": int, "start": str, "fired": str}, pk=("record", "lead", "start")
    )


@migrations()
def m003_sharing(db: Database) -> None:
    # A local, monotonic revision bumped by every write to a record (local or merged
    # from another device): each share remembers the revision it has published up
    # to, so finding what changed since costs an index range, not a scan.
    db["records"].add_column("rev", int, not_null_default=0)
    db["records"].create_index(["rev"])
    # Pinned contacts by alias; `card` is the signed card exactly as pinned.
    db["contacts"].create(
        {"alias": str, "identity": str, "card": str, "pinned": str, "stamp": str}, pk="alias"
    )
    db["contacts"].create_index(["identity"], unique=True)
    # Shares this identity made. Synced columns first; `hwm` (last revision
    # published), `invite` (invitation still to send, on the device that made the
    # share), `erased` (mailboxes deleted after revocation), `gone` (the relay has
    # no mailbox any more) and `ended_logged` are this device's own progress.
    db["shares_out"].create(
        {
            "id": str,
            "alias": str,
            "identity": str,
            "recipient": str,
            "scope": str,
            "created": str,
            "expires": float,
            "notes": int,
            "keys": str,
            "revoked": str,
            "relay": str,
            "stamp": str,
            "hwm": int,
            "invite": int,
            "erased": int,
            "gone": int,
            "ended_logged": int,
        },
        pk="id",
        defaults={"revoked": "", "hwm": -1, "invite": 0, "erased": 0, "gone": 0, "ended_logged": 0},
    )
    # Shares other identities made to this one (the practitioner's side).
    db["shares_in"].create(
        {
            "id": str,
            "alias": str,
            "identity": str,
            "patient": str,
            "scope": str,
            "received": str,
            "expires": float,
            "notes": int,
            "relay": str,
            "keys": str,
            "gone": int,
        },
        pk="id",
        defaults={"gone": 0},
    )
    # What a share's mailbox holds, merged: on the practitioner's side the shared
    # records, on the patient's side what has been published (to publish only the
    # difference). Field registers as in `records`, plus a `shown` register.
    db["share_records"].create(
        {
            "share": str,
            "record": str,
            "vals": str,
            "clocks": str,
            "shown": int,
            "shown_stamp": str,
        },
        pk=("share", "record"),
    )
    db["practitioner_notes"].create(
        {
            "id": str,
            "share": str,
            "record": str,
            "author": str,
            "author_name": str,
            "text": str,
            "at": str,
        },
        pk="id",
    )
    db["practitioner_notes"].create_index(["record"])
    # The audit log, in this device's order, each event hashing the one before.
    db["audit"].create(
        {
            "seq": int,
            "id": str,
            "at": str,
            "kind": str,
            "detail": str,
            "device": str,
            "prev": bytes,
            "hash": bytes,
        },
        pk="seq",
    )
    db["audit"].create_index(["id"], unique=True)


@migrations()
def m004_relay_loss(db: Database) -> None:
    # How far each writer's entries were applied before the relay lost them, so
    # that entries sent again are checked but not applied twice (sync/outbox.py).
    db["feed_in"].add_column("applied", int, not_null_default=0)
    db["feed_in"].add_column("applied_head", bytes, not_null_default=b"")


@migrations()
def m005_snapshots(db: Database) -> None:
    # What snapshots vouched for (see protocol/snapshot.py): per writer, the head
    # an entry may continue from after compacted history. Per mailbox, the cursor
    # of the newest snapshot seen, from which a device judges when to write one,
    # and the newest version of operations seen, above which it must not compact.
    db["feed_in"].add_column("floor_seq", int, not_null_default=0)
    db["feed_in"].add_column("floor_head", bytes, not_null_default=b"")
    db["cursors"].add_column("snapshot", int, not_null_default=0)
    db["cursors"].add_column("version", int, not_null_default=0)


@migrations()
def m006_chain(db: Database) -> None:
    # The hash of every entry accepted from another writer, so that what other
    # devices say they saw of a chain (protocol/frontier.py) can be checked.
    db["chain"].create(
        {"mailbox": str, "writer": bytes, "seq": int, "hash": bytes},
        pk=("mailbox", "writer", "seq"),
    )


@migrations()
def m007_expected_and_anchors(db: Database) -> None:
    # The newest entry of each writer that another device said it had seen and
    # that this device has not been shown yet (daemon/sync/overdue.py); the hash
    # of the entry at each read cursor, to see that it is still there (sync/pull.py).
    db["feed_in"].add_column("expected", int, not_null_default=0)
    db["cursors"].add_column("anchor", bytes, not_null_default=b"")
