from pathlib import Path

import pytest

from carnet.daemon import importing
from carnet.daemon.store import ImportSummary, Store
from carnet.protocol.errors import ImportRejected, InvalidRecord
from tests.daemon_process.files import write_ics


def test_progress_steps_share_one_transaction(store: Store, tmp_path: Path) -> None:
    records = importing.parse(write_ics(tmp_path / "a.ics", 600, "steps"))
    seen: list[int] = []
    summary = importing.store_records(store, records, seen.append)
    assert summary == ImportSummary(600, 0, 0)
    assert sum(seen) == 600 and len(seen) == 3
    assert importing.store_records(store, records) == ImportSummary(0, 0, 600)


def test_a_failure_midway_stores_nothing(store: Store, tmp_path: Path) -> None:
    records = importing.parse(write_ics(tmp_path / "a.ics", 600, "atomic"))
    records[550]["start"] = "not a date"

    def progress(_: int) -> None:
        pass

    with pytest.raises(InvalidRecord):
        importing.store_records(store, records, progress)
    assert store.count() == 0


def test_rejections_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "x.ics"
    bad.write_bytes(b"\x00\xff garbage")
    with pytest.raises(ImportRejected) as err:
        importing.parse(bad)
    assert "\n" not in str(err.value)


def test_summary_line() -> None:
    assert (
        importing.describe("a.ics", ImportSummary(1, 2, 3))
        == "a.ics: 1 added, 2 updated, 3 unchanged"
    )


def test_a_file_means_the_same_whatever_was_read_before(tmp_path: Path) -> None:
    zone = (
        "BEGIN:VTIMEZONE\r\nTZID:Carnet/Test\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
        "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    )
    event = (
        "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART;TZID=Carnet/Test:20310101T090000\r\nSUMMARY:Dr Zone\r\nEND:VEVENT\r\n"
    )
    head, tail = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n", "END:VCALENDAR\r\n"
    defines = tmp_path / "defines.ics"
    defines.write_text(head + zone + event.format(uid="a") + tail, newline="")
    borrows = tmp_path / "borrows.ics"
    borrows.write_text(head + event.format(uid="b") + tail, newline="")
    with pytest.raises(ImportRejected, match="time zone"):
        importing.parse(borrows)
    assert len(importing.parse(defines)) == 1
    with pytest.raises(ImportRejected, match="time zone"):
        importing.parse(borrows)  # not resolved from the zone the other file defined
