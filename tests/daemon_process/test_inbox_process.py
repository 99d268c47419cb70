"""carnetd's inbox with real files: the shared corpus, and files still being written."""

import shutil
import time
from pathlib import Path

import pytest

from carnet.daemon.importing import parse
from carnet.protocol.errors import ImportRejected
from tests.daemon_process.conftest import StartDaemon
from tests.daemon_process.files import fhir_bundle_text
from tests.daemon_process.harness import init_device, stored, wait_until

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


def settled_names(folder: Path) -> set[str]:
    if not folder.exists():
        return set()
    return {p.name for p in folder.iterdir() if not p.name.endswith(".error.txt")}


def test_every_corpus_file_is_imported_or_rejected_with_a_reason(
    tmp_path: Path, daemon: StartDaemon
) -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not at {CORPUS} (it sits beside the repository)")
    files = {"__".join(p.relative_to(CORPUS).parts): p for p in CORPUS.rglob("*") if p.is_file()}
    # What the formats module makes of each file decides what the inbox must do with it.
    expected_ok: set[str] = set()
    expected_rejected: set[str] = set()
    sources: set[str] = set()
    for name, path in files.items():
        try:
            sources.update(r["source"] for r in parse(path))
            expected_ok.add(name)
        except ImportRejected:
            expected_rejected.add(name)
    # The corpus as it stands (see tests/formats/test_corpus_import.py for each folder).
    assert (len(expected_ok), len(expected_rejected)) == (191, 149)

    home = init_device(tmp_path / "a")
    carnetd = daemon(home)
    inbox = home / "inbox"
    for name, path in files.items():
        shutil.copyfile(path, inbox / name)
    wait_until(
        lambda: (
            len(settled_names(inbox / "imported")) + len(settled_names(inbox / "rejected"))
            == len(files)
        ),
        120,
        "every file handled",
    )
    assert settled_names(inbox / "imported") == expected_ok
    assert settled_names(inbox / "rejected") == expected_rejected
    for name in expected_rejected:
        reason = (inbox / "rejected" / f"{name}.error.txt").read_text()
        assert reason.startswith("Cannot import file: ") and reason.count("\n") == 1, name
    assert carnetd.running
    records = stored(home)
    assert len(records) == len(sources)
    log = carnetd.log()
    assert log.count("imported a file") == len(expected_ok)
    names = {r["practitioner"] for r in records if len(r["practitioner"]) >= 6}
    assert not [n for n in names if n in log], "a practitioner's name reached the log"
    assert not [f for f in files if f in log], "a file name reached the log"
    assert carnetd.stop() == 0


def test_a_file_still_being_written_is_not_imported_early(
    tmp_path: Path, daemon: StartDaemon
) -> None:
    home = init_device(tmp_path / "a")
    daemon(home)
    inbox = home / "inbox"
    pauses = 0.6  # three times the settle time the harness configures

    # A copy that keeps the file open between pieces (cp, a browser download).
    held = fhir_bundle_text(300, "held").encode()
    with (inbox / "held.json").open("wb") as out:
        for start in range(0, len(held), len(held) // 4):
            out.write(held[start : start + len(held) // 4])
            out.flush()
            time.sleep(pauses)
            assert (inbox / "held.json").exists() and stored(home) == []

    # A writer that reopens the file for each piece: no open file betrays it, but
    # a truncated file that fails to parse while it is young is only "not ready".
    reopened = fhir_bundle_text(200, "reopened").encode()
    (inbox / "reopened.json").write_bytes(b"")
    for start in range(0, len(reopened), len(reopened) // 3):
        with (inbox / "reopened.json").open("ab") as out:
            out.write(reopened[start : start + len(reopened) // 3])
        time.sleep(pauses)
        if start + len(reopened) // 3 < len(reopened):
            assert (inbox / "reopened.json").exists()
            assert not (inbox / "rejected" / "reopened.json").exists()

    wait_until(
        lambda: settled_names(inbox / "imported") == {"held.json", "reopened.json"},
        15,
        "both files imported once complete",
    )
    assert len(stored(home)) == 500
    assert settled_names(inbox / "rejected") == set()
