"""The device's local store: one SQLite file (WAL) holding merged records,
the outbox of local operations, feed state and alerts.

Every public method that writes runs in one IMMEDIATE transaction, so a crash
or a bad input leaves the store as it was before the call.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from carnet.daemon import clock
from carnet.daemon.merge import TOMBSTONE, Register, is_deleted, merge
from carnet.daemon.records import FIELDS, new_record, now_iso, start_timestamp, validate
from carnet.daemon.store.schema import migrations
from carnet.protocol.errors import UnknownRecord

RECORD_COLUMNS = ("id", *FIELDS)
# A snapshot's operations stay this small, so any of them fits in an entry.
STATE_OP_BYTES = 16 * 1024
# How exports name a record that came from no file (see daemon/formats).
CARNET_SOURCE = "carnet:"


@dataclass(frozen=True)
class ImportSummary:
    added: int
    updated: int
    unchanged: int


def connect(path: Path) -> sqlite3.Connection:
    if not path.exists():  # plaintext records: readable by this user only
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE), never implicit.
    conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed record survives power loss, not only a crash of carnet.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Store:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.db = Database(conn)
        migrations.apply(self.db)

    @classmethod
    def open(cls, path: Path) -> Store:
        return cls(connect(path))

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        if self.conn.in_transaction:  # nested: the outer transaction decides
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # --- small key/value state -------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def device_id(self) -> str:
        device = self.get_meta("device_id")
        if device is None:
            raise RuntimeError("store has no device id; it was not initialised")
        return device

    def stamp(self) -> str:
        """A fresh HLC stamp for a local event (call inside a transaction)."""
        return self._stamp()

    def _stamp(self) -> str:
        """A fresh HLC stamp for a local write (call inside a transaction)."""
        last = clock.Stamp.decode(self.get_meta("hlc") or clock.ZERO.encode())
        stamp = clock.tick(last, self.device_id)
        self.set_meta("hlc", stamp.encode())
        return stamp.encode()

    def observe(self, stamp: str) -> None:
        """Advance our clock past a remote stamp (call inside a transaction)."""
        last = clock.Stamp.decode(self.get_meta("hlc") or clock.ZERO.encode())
        self.set_meta(
            "hlc", clock.receive(last, clock.Stamp.decode(stamp), self.device_id).encode()
        )

    # --- records ---------------------------------------------------------------

    def _row(self, record_id: str) -> dict[str, Any] | None:
        cur = self.conn.execute("SELECT * FROM records WHERE id = ?", (record_id,))
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cur.description], row, strict=True))

    def get(self, record_id: str) -> dict[str, Any]:
        row = self._row(record_id)
        if row is None or row["deleted"]:
            raise UnknownRecord(record_id)
        return {name: row[name] for name in RECORD_COLUMNS}

    def list(self) -> list[dict[str, Any]]:
        cur = self.conn.execute(
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM records WHERE deleted = 0 "
            "ORDER BY start_ts, id"
        )
        return [dict(zip(RECORD_COLUMNS, row, strict=True)) for row in cur]

    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM records WHERE deleted = 0").fetchone()[0]

    def _write(self, record_id: str, writes: dict[str, Register]) -> bool:
        """Merge writes into a record row, creating it if new. True if it changed."""
        row = self._row(record_id)
        values: dict[str, Any] = dict.fromkeys(FIELDS, "")
        clocks: dict[str, str] = {}
        if row is not None:
            values.update({n: row[n] for n in FIELDS})
            clocks = json.loads(row["clocks"])
        if not merge(values, clocks, writes):
            return False
        # Every change, local or merged, gets the next revision (see shares' publishing).
        (rev,) = self.conn.execute("SELECT coalesce(max(rev), 0) + 1 FROM records").fetchone()
        self.conn.execute(
            f"INSERT OR REPLACE INTO records ({', '.join(RECORD_COLUMNS)}, deleted, start_ts, "
            f"clocks, rev) VALUES ({', '.join('?' * (len(RECORD_COLUMNS) + 4))})",
            (
                record_id,
                *(values[n] for n in FIELDS),
                int(is_deleted(clocks)),
                start_timestamp(values) if values["start"] else 0.0,
                json.dumps(clocks),
                rev,
            ),
        )
        return True

    def _local_write(self, record_id: str, values: dict[str, Any]) -> None:
        """Stamp, apply and queue for sync a local write (inside a transaction)."""
        stamp = self._stamp()
        writes: dict[str, Register] = {name: (value, stamp) for name, value in values.items()}
        if self._write(record_id, writes):
            self.enqueue({"t": "rec", "id": record_id, "f": writes})

    def add(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validate and store a new appointment; returns it (with its new id)."""
        record = new_record(changes).to_dict()
        with self.transaction():
            self._local_write(record["id"], {n: record[n] for n in FIELDS})
        return record

    def edit(self, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        with self.transaction():
            current = self.get(record_id)
            values = validate(changes, current)
            values = {n: v for n, v in values.items() if current[n] != v}
            if values:
                values["updated"] = now_iso()
                self._local_write(record_id, values)
            return self.get(record_id)

    def delete(self, record_id: str) -> None:
        with self.transaction():
            self.get(record_id)
            self._local_write(record_id, {TOMBSTONE: True})

    def import_records(self, records: Iterable[dict[str, Any]]) -> ImportSummary:
        """Store validated records from one file, all or none, never duplicating.

        A record whose ``source`` is already known updates the fields that
        differ instead of adding a copy; one the patient deleted stays deleted.
        """
        by_source = {r["source"]: r for r in records}
        added = updated = unchanged = 0
        with self.transaction():
            for source, incoming in by_source.items():
                row = self._find_source(source)
                if row is None:
                    record = new_record(incoming).to_dict()
                    self._local_write(record["id"], {n: record[n] for n in FIELDS})
                    added += 1
                    continue
                current = self.get(row[0]) if not row[1] else None
                changes = {
                    n: v
                    for n, v in incoming.items()
                    if current and n not in ("created", "updated") and v and current[n] != v
                }
                if changes:
                    self._local_write(row[0], {**changes, "updated": now_iso()})
                    updated += 1
                else:
                    unchanged += 1
        return ImportSummary(added, updated, unchanged)

    def _find_source(self, source: str) -> tuple[str, int] | None:
        """The record a source key names: carnet's own exports name records by id."""
        if source.startswith(CARNET_SOURCE):
            by_id = "SELECT id, deleted FROM records WHERE id = ?"
            row = self.conn.execute(by_id, (source.removeprefix(CARNET_SOURCE),)).fetchone()
            if row:
                return row
        return self.conn.execute(
            "SELECT id, deleted FROM records WHERE source = ? LIMIT 1", (source,)
        ).fetchone()

    # --- devices of this identity ----------------------------------------------

    def register_device(self, device: str, name: str) -> None:
        with self.transaction():
            op = {
                "t": "device",
                "dev": device,
                "name": name,
                "added": now_iso(),
                "s": self._stamp(),
            }
            self._apply_device(op)
            self.enqueue(op)

    def _apply_device(self, op: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO devices (device, name, added, stamp) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(device) DO UPDATE SET name = excluded.name, stamp = excluded.stamp "
            "WHERE excluded.stamp > devices.stamp",
            (op["dev"], op["name"], op["added"], op["s"]),
        )

    def devices(self) -> list[dict[str, str]]:
        cur = self.conn.execute("SELECT device, name, added FROM devices ORDER BY added")
        return [{"device": d, "name": n, "added": a} for d, n, a in cur]

    # --- operations to and from other devices -----------------------------------

    def state_ops(self) -> Iterator[dict[str, Any]]:
        """Operations that rebuild every record register and device (for a snapshot).

        A record merged from several devices' edits may be larger than any one
        device could write, so its registers are spread over operations of at
        most STATE_OP_BYTES (each register merges on its own).
        """
        cur = self.conn.execute(f"SELECT id, {', '.join(FIELDS)}, clocks FROM records ORDER BY id")
        for record_id, *values, clocks in cur:
            row = dict(zip(FIELDS, values, strict=True))
            writes: dict[str, list[Any]] = {}
            size = 0
            for name, stamp in json.loads(clocks).items():
                register = [True if name == TOMBSTONE else row[name], stamp]
                grows = len(json.dumps({name: register}, ensure_ascii=False).encode())
                if writes and size + grows > STATE_OP_BYTES:
                    yield {"t": "rec", "id": record_id, "f": writes}
                    writes, size = {}, 0
                writes[name], size = register, size + grows
            yield {"t": "rec", "id": record_id, "f": writes}
        devices = self.conn.execute("SELECT device, name, added, stamp FROM devices")
        for device, name, added, stamp in devices:
            yield {"t": "device", "dev": device, "name": name, "added": added, "s": stamp}

    def enqueue(self, op: dict[str, Any]) -> None:
        self.conn.execute("INSERT INTO outbox (op) VALUES (?)", (json.dumps(op),))

    def apply_remote(self, op: dict[str, Any]) -> str:
        """Merge one operation written by another device (inside a transaction).

        Returns the newest stamp it carried, for the caller to ``observe`` once.
        """
        kind = op.get("t")
        if kind == "rec":
            writes = {n: (v, s) for n, (v, s) in op["f"].items() if n in FIELDS or n == TOMBSTONE}
            self._write(op["id"], writes)
            return max((s for _, s in writes.values()), default="")
        if kind == "device":
            self._apply_device(op)
            return str(op["s"])
        # Unknown kinds come from newer versions; skipping keeps the chain intact.
        return ""

    def add_alert(self, message: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO alerts (at, message) VALUES (?, ?)", (now_iso(), message)
            )

    def alerts(self) -> list[dict[str, str]]:
        cur = self.conn.execute("SELECT at, message FROM alerts ORDER BY id")
        return [{"at": at, "message": m} for at, m in cur]
