import asyncio
import os
import time
from pathlib import Path

import pytest

from carnet.daemon.carnetd.inbox import (
    IMPORTED,
    REJECTED,
    Inbox,
    free_name,
    is_candidate,
    process_file,
    writer_active,
)
from carnet.daemon.store import Store
from tests.daemon_process.files import ics_text, write_ics

GRACE = 2.0


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    for sub in (folder, folder / IMPORTED, folder / REJECTED):
        sub.mkdir(parents=True)
    return folder


def aged(path: Path, seconds: float = 60) -> Path:
    """Backdate a file, as if it had been dropped a while ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        ("appointments.ics", True),
        ("Encounter.000.ndjson", True),
        ("New Years Day.ics", True),
        (".hidden.ics", False),
        ("download.ics.part", False),
        ("x.json.tmp", False),
        ("x.ics.crdownload", False),
        ("x.ics~", False),
        ("#x.ics#", False),
    ],
)
def test_work_in_progress_names_are_ignored(name: str, wanted: bool) -> None:
    assert is_candidate(name) is wanted


def test_free_name_never_overwrites(tmp_path: Path) -> None:
    assert free_name(tmp_path, "a.ics") == tmp_path / "a.ics"
    (tmp_path / "a.ics").touch()
    (tmp_path / "a-2.ics").touch()
    assert free_name(tmp_path, "a.ics") == tmp_path / "a-3.ics"


def test_a_good_file_is_imported_then_moved(store: Store, inbox: Path) -> None:
    outcome = process_file(store, write_ics(inbox / "rdv.ics", 3, "good"), GRACE)
    assert outcome.kind == "imported"
    assert outcome.summary is not None and outcome.summary.added == 3
    assert outcome.moved_to == inbox / IMPORTED / "rdv.ics"
    # The same name again: a second copy, nothing overwritten and no duplicate record.
    again = process_file(store, write_ics(inbox / "rdv.ics", 3, "good"), GRACE)
    assert again.moved_to == inbox / IMPORTED / "rdv-2.ics"
    assert again.summary is not None and again.summary.unchanged == 3
    assert store.count() == 3


def test_a_bad_file_is_rejected_with_its_reason(store: Store, inbox: Path) -> None:
    bad = inbox / "notes.ics"
    bad.write_text("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:x\r\n")
    outcome = process_file(store, aged(bad), GRACE)
    assert outcome.kind == "rejected"
    assert outcome.moved_to == inbox / REJECTED / "notes.ics"
    reason = (inbox / REJECTED / "notes.ics.error.txt").read_text()
    assert reason.startswith("Cannot import file: notes.ics: ")
    assert reason.count("\n") == 1
    assert store.count() == 0


def test_a_young_file_that_fails_to_parse_is_not_ready_yet(store: Store, inbox: Path) -> None:
    partial = inbox / "partial.ics"
    partial.write_text(ics_text(5, "p")[:300])
    outcome = process_file(store, partial, GRACE)
    assert outcome.kind == "not-ready"
    assert 0 < outcome.retry_in <= GRACE
    assert partial.exists()


def test_a_file_open_for_writing_is_not_ready(store: Store, inbox: Path) -> None:
    path = inbox / "copying.ics"
    with path.open("w") as writer:
        writer.write(ics_text(2, "w"))
        writer.flush()
        aged(path)
        assert writer_active(path)
        assert process_file(store, path, GRACE).kind == "not-ready"
    assert not writer_active(path)
    assert process_file(store, path, GRACE).kind == "imported"


def test_a_reason_left_by_a_crash_is_overwritten_not_duplicated(store: Store, inbox: Path) -> None:
    (inbox / REJECTED / "bad.json.error.txt").write_text("stale\n")
    bad = inbox / "bad.json"
    bad.write_text("{}")
    aged(bad)
    assert process_file(store, bad, GRACE).moved_to == inbox / REJECTED / "bad.json"
    assert "stale" not in (inbox / REJECTED / "bad.json.error.txt").read_text()


def test_a_vanished_file_is_gone(store: Store, inbox: Path) -> None:
    assert process_file(store, inbox / "nothing.ics", GRACE).kind == "gone"


async def test_the_inbox_takes_files_present_and_dropped(tmp_path: Path, inbox: Path) -> None:
    store = Store.open(tmp_path / "inbox-store.sqlite3")
    with store.transaction():
        store.set_meta("device_id", "a1b2c3d4e5f60708")
    write_ics(inbox / "before.ics", 2, "before")
    imported: list[None] = []
    box = Inbox(inbox, store, settle=0.1, on_imported=lambda: imported.append(None))
    task = asyncio.create_task(box.run())
    try:
        write_ics(inbox / "after.ics", 3, "after")
        (inbox / "ignored.ics.part").write_text("not yet")
        (inbox / "bad.ics").write_text("garbage")
        aged(inbox / "bad.ics")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done = {p.name for p in (inbox / IMPORTED).iterdir()}
            if done == {"before.ics", "after.ics"} and (inbox / REJECTED / "bad.ics").exists():
                break
            await asyncio.sleep(0.05)
    finally:
        box.stop()
        await asyncio.wait_for(task, 5)
    assert {p.name for p in (inbox / IMPORTED).iterdir()} == {"before.ics", "after.ics"}
    assert (inbox / REJECTED / "bad.ics.error.txt").exists()
    assert (inbox / "ignored.ics.part").exists()
    assert store.count() == 5
    assert len(imported) == 2
    store.close()


def test_a_parser_bug_costs_one_file_not_the_daemon(
    store: Store, inbox: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    quoted = "Dr " + "Secret"  # as a parser might quote a value from the file

    def broken(path: Path) -> list[dict[str, str]]:
        raise KeyError(quoted)

    monkeypatch.setattr("carnet.daemon.importing.parse", broken)
    outcome = process_file(store, write_ics(inbox / "odd.ics", 1, "odd"), GRACE)
    assert outcome.kind == "rejected"
    reason = (inbox / REJECTED / "odd.ics.error.txt").read_text()
    assert reason.startswith("Cannot import file: odd.ics: carnet failed on this file (KeyError)")
    assert "reading a file failed (KeyError)" in caplog.text
    assert quoted not in caplog.text
