import os
import stat

import pytest

from carnet.daemon.store import Store
from carnet.protocol.errors import InvalidRecord, UnknownRecord

BASE = {"practitioner": "Dr Martin", "start": "2026-12-01T09:30:00+01:00"}


def snapshot(store: Store) -> list:
    return (
        store.conn.execute("SELECT * FROM records ORDER BY id").fetchall()
        + store.conn.execute("SELECT * FROM outbox").fetchall()
    )


def test_store_file_is_private_and_wal(store: Store, tmp_path) -> None:
    mode = os.stat(tmp_path / "store.sqlite3").st_mode
    assert not mode & (stat.S_IRWXG | stat.S_IRWXO)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_add_edit_delete_queue_operations(store: Store) -> None:
    record = store.add({**BASE, "specialty": "cardiology"})
    assert store.get(record["id"])["specialty"] == "cardiology"
    store.edit(record["id"], {"notes": "fasting"})
    assert store.get(record["id"])["notes"] == "fasting"
    store.delete(record["id"])
    with pytest.raises(UnknownRecord):
        store.get(record["id"])
    assert store.list() == []
    assert store.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 3


def test_invalid_edit_writes_nothing(store: Store) -> None:
    record = store.add(BASE)
    before = snapshot(store)
    with pytest.raises(InvalidRecord):
        store.edit(record["id"], {"end": "2020-01-01T00:00:00Z"})
    with pytest.raises(UnknownRecord):
        store.edit("nope", {"notes": "x"})
    assert snapshot(store) == before


def test_import_is_all_or_nothing_and_never_duplicates(store: Store) -> None:
    rows = [{**BASE, "source": f"ical:{i}", "reason": "r"} for i in range(3)]
    assert store.import_records(rows).added == 3
    again = store.import_records(rows)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    with pytest.raises(InvalidRecord):
        store.import_records([*rows, {**BASE, "source": "ical:bad", "practitioner": ""}])
    assert store.count() == 3
    moved = {**rows[0], "start": "2026-12-02T09:30:00+01:00", "end": "2026-12-02T10:00:00+01:00"}
    assert store.import_records([moved]).updated == 1
    assert [r["start"] for r in store.list() if r["source"] == "ical:0"] == [moved["start"]]


def test_remote_ops_merge_without_echo(store: Store) -> None:
    record = store.add(BASE)
    store.conn.execute("DELETE FROM outbox")
    stamp = "999999999999999.000000.ffffffffffffffff"
    with store.transaction():
        newest = store.apply_remote(
            {"t": "rec", "id": record["id"], "f": {"notes": ["remote", stamp]}}
        )
        store.observe(newest)
    assert store.get(record["id"])["notes"] == "remote"
    assert store.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
