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
