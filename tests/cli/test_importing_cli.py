import json
import os
import socket
import stat
from pathlib import Path

import icalendar

from tests.cli.conftest import Run
from tests.daemon_process.files import write_ics


def test_import_reports_each_file_and_fails_if_one_is_rejected(
    initialised: Run, tmp_path: Path
) -> None:
    good = write_ics(tmp_path / "rdv.ics", 3, "cli")
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": 1}')
    result = initialised("import", str(good), str(bad))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "rdv.ics: 3 added, 0 updated, 0 unchanged"
    assert lines[1].startswith("notes.json: rejected: is JSON")
    again = initialised("import", str(good))
    assert again.exit_code == 0
    assert again.output == "rdv.ics: 0 added, 0 updated, 3 unchanged\n"
    listed = json.loads(initialised("list", "--json").output)
    assert len(listed) == 3


def test_a_large_file_imports_in_one_piece(initialised: Run, tmp_path: Path) -> None:
    big = write_ics(tmp_path / "big.ics", 700, "big")
    result = initialised("import", str(big))
    assert result.exit_code == 0, result.output
    assert "big.ics: 700 added" in result.output


def test_export_fhir_and_ics(initialised: Run, tmp_path: Path) -> None:
    initialised("import", str(write_ics(tmp_path / "rdv.ics", 2, "out")))
    bundle = json.loads(initialised("export", "--format", "fhir").output)
    assert bundle["resourceType"] == "Bundle"
    assert len(bundle["entry"]) == 2
    target = tmp_path / "out.ics"
    result = initialised("export", "--format", "ics", "-o", str(target))
    assert result.exit_code == 0 and result.output == ""
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    calendar = icalendar.Calendar.from_ical(target.read_bytes())
    assert len(calendar.walk("VEVENT")) == 2
    missing = initialised("export", "--format", "ics", "-o", str(tmp_path / "no" / "x.ics"))
    assert missing.exit_code == 2
    assert "cannot write" in missing.output


def test_a_write_pokes_the_daemon_and_a_read_does_not(initialised: Run, tmp_path: Path) -> None:
    daemon = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    daemon.bind(str(tmp_path / "home" / "carnetd.sock"))
    daemon.settimeout(0.2)
    initialised("list")
    added = initialised("add", "--practitioner", "Dr Poke", "--start", "2030-01-01T09:00Z")
    assert added.exit_code == 0
    assert daemon.recv(64) == b"push"
    initialised("show", added.output.strip())
    try:
        extra = daemon.recv(64)
    except TimeoutError:
        extra = b""
    assert extra == b""
    daemon.close()


def test_status_says_whether_the_daemon_runs(initialised: Run) -> None:
    result = initialised("status", "--json")
    assert json.loads(result.output)["daemon"] == {"running": False}
    assert "daemon           not running" in initialised("status").output
