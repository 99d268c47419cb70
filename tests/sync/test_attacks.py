"""Issue 2: a relay that alters what it stores is caught, and the reader's store is unchanged."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from carnet.daemon.device import Device as LibDevice
from carnet.daemon.paths import Paths
from carnet.daemon.sync import overdue
from carnet.protocol.envelope import seal
from tests.sharing import conftest as sharing
from tests.support.relay_process import RelayProcess
from tests.sync.test_compaction import alerts, laptop_and_phone, records

from .conftest import Device


def relay_db(relay: RelayProcess) -> sqlite3.Connection:
    return sqlite3.connect(next(relay.data_dir.glob("*.sqlite3")), isolation_level=None)


def vault_rows(db: sqlite3.Connection) -> list[tuple]:
    """(mailbox, cursor, writer, seq, data) of the biggest mailbox: the vault."""
    (mailbox,) = db.execute(
        "SELECT mailbox FROM entries GROUP BY mailbox ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()
    return db.execute(
        "SELECT mailbox, cursor, writer, seq, data FROM entries WHERE mailbox = ? ORDER BY cursor",
        (mailbox,),
    ).fetchall()


def flip_byte(db: sqlite3.Connection, rows: list[tuple]) -> None:
    mailbox, cursor, _, _, data = rows[-2]
    tampered = bytearray(data)
    tampered[100] ^= 0x40
    db.execute(
        "UPDATE entries SET data = ? WHERE mailbox = ? AND cursor = ?",
        (bytes(tampered), mailbox, cursor),
    )


def delete_one(db: sqlite3.Connection, rows: list[tuple]) -> None:
    db.execute("DELETE FROM entries WHERE mailbox = ? AND cursor = ?", rows[-2][:2])


def replay_older(db: sqlite3.Connection, rows: list[tuple]) -> None:
    # The newest entry is replaced by a copy of the writer's first one (already read).
    mailbox, first_cursor, _, seq, data = rows[0]
    db.execute("DELETE FROM entries WHERE mailbox = ? AND cursor = ?", (mailbox, first_cursor))
    db.execute(
        "UPDATE entries SET seq = ?, data = ? WHERE mailbox = ? AND cursor = ?",
        (seq, data, mailbox, rows[-1][1]),
    )


def swap_two(db: sqlite3.Connection, rows: list[tuple]) -> None:
    (m, c1, _, s1, d1), (_, c2, _, s2, d2) = rows[-2], rows[-1]
    db.execute("UPDATE entries SET seq = -1 WHERE mailbox = ? AND cursor = ?", (m, c1))
    db.execute(
        "UPDATE entries SET seq = ?, data = ? WHERE mailbox = ? AND cursor = ?", (s1, d1, m, c2)
    )
    db.execute(
        "UPDATE entries SET seq = ?, data = ? WHERE mailbox = ? AND cursor = ?", (s2, d2, m, c1)
    )


@pytest.mark.parametrize(
    ("attack", "verdict"),
    [
        (flip_byte, "tampered entry"),
        (delete_one, "missing entry"),
        # Seen from B, a replay; B then reads again from the start (a relay restored
        # from a backup looks alike), where the moved first entry is missing.
        (replay_older, "missing entry"),
        (swap_two, "missing entry"),
    ],
)
def test_reader_refuses_and_keeps_its_store(
    pair: tuple[Device, Device],
    relay: RelayProcess,
    attack: Callable[[sqlite3.Connection, list[tuple]], None],
    verdict: str,
) -> None:
    a, b = pair
    a.run("add", "--practitioner", "Dr First", "--start", "2027-05-01T10:00Z")
    a.run("sync")
    b.run("sync")  # B has read A's first entries
    for i in range(3):  # then three more entries in A's feed, one per sync
        a.run("add", "--practitioner", f"Dr {i}", "--start", f"2027-05-0{i + 2}T10:00Z")
        a.run("sync")
    records_before = b.records()
    relay.stop()
    with relay_db(relay) as db:
        attack(db, vault_rows(db))
    relay.restart()
    result = b.run("sync", check=False)
    assert result.returncode == 1
    assert verdict in result.stderr.lower(), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert b.records() == records_before
    status = json.loads(b.run("status", "--json").stdout)
    assert verdict in status["alerts"][-1]["message"].lower()


def test_a_relay_showing_two_devices_different_histories_is_caught_when_they_cross(
    pair: tuple[Device, Device], relay: RelayProcess, tmp_path: Path
) -> None:
    """A fork: the relay showed B one entry of A's feed and shows C another (A
    signed both, say after its store was restored from a backup). Each history
    is consistent alone; B's entry says which one B saw, and C refuses it."""
    a, b = pair
    c = Device(tmp_path / "c")
    code = a.run("device", "invite").stdout.strip().splitlines()[-1]
    c.run("init", "--relay", relay.url, "--join", code, "--no-passphrase")
    for device in (a, b, c):
        device.run("sync")
    a.run("add", "--practitioner", "Dr Shown to B", "--start", "2027-05-01T10:00Z")
    a.run("sync")
    b.run("sync")
    b.run("add", "--practitioner", "Dr B", "--start", "2027-05-02T10:00Z")
    b.run("sync")  # B's entry says what B saw of A's feed
    lib = LibDevice.open(Paths.resolve(a.home))
    try:
        secrets = lib.unlock()
        keys = secrets.vault_mailbox
        seq, data = lib.store.conn.execute(
            "SELECT seq, data FROM feed_out WHERE mailbox = ? ORDER BY seq DESC LIMIT 1",
            (keys.hex_id,),
        ).fetchone()
        prev = lib.store.conn.execute(
            "SELECT hash FROM feed_out WHERE mailbox = ? AND seq = ?", (keys.hex_id, seq - 1)
        ).fetchone()[0]
        other = seal(keys, secrets.writer, seq, prev, {"ops": [], "v": 1})
    finally:
        lib.close()
    relay.stop()
    with relay_db(relay) as db:  # what the relay shows C from now on
        db.execute("UPDATE entries SET data = ? WHERE data = ?", (other.data, data))
    relay.restart()
    result = c.run("sync", check=False)  # A's other entry is consistent on its own
    assert result.returncode == 1
    assert "forked feed" in result.stderr.lower() and "as seen by writer" in result.stderr
    assert not {"Dr B", "Dr Shown to B"} & {r["practitioner"] for r in c.records()}


def test_a_freeze_is_told_once_another_device_has_seen_more(
    relay: RelayProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay keeps A's newest entry from the tablet: A's chain looks complete
    there, but B's entry says B saw it, and after a wait the tablet says so."""
    monkeypatch.setattr(overdue, "WAIT", 0)
    a, b = laptop_and_phone(tmp_path, relay.url)
    tablet = sharing.join(tmp_path / "tablet", a, relay.url, "tablet")
    for person in (a, b, tablet):
        person.run("sync")
    sharing.add(a, "cardiology", "2027-05-01T10:00+02:00", "Dr Newest")
    a.run("sync")
    b.run("sync")
    sharing.add(b, "dermatology", "2027-05-02T10:00+02:00", "Dr B")
    b.run("sync")  # says it saw A's newest entry
    relay.stop()
    with relay_db(relay) as db:
        db.execute("DELETE FROM entries WHERE data = ?", (newest_data(a),))
    relay.restart()
    for _ in range(3):
        tablet.run("sync")
    told = [x for x in alerts(tablet) if "entries another device has seen" in x["message"]]
    assert len(told) == 1 and "up to entry" in told[0]["message"]
    assert "Dr B" in {r["practitioner"] for r in records(tablet)}


def newest_data(person: sharing.Person) -> bytes:
    """The bytes of `person`'s newest entry in its vault."""
    with person.device() as device:
        keys = device.unlock().vault_mailbox
        row = device.store.conn.execute(
            "SELECT data FROM feed_out WHERE mailbox = ? ORDER BY seq DESC LIMIT 1",
            (keys.hex_id,),
        ).fetchone()
    return bytes(row[0])
