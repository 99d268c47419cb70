import json
import os
import stat
from pathlib import Path

from .conftest import Run


def test_init_with_passphrase_file_seals_keys(carnet: Run, tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_text("hunter2 but longer\n")
    result = carnet("init", "--relay", "http://127.0.0.1:9", "--passphrase-file", str(secret))
    assert result.exit_code == 0, result.output
    keys = tmp_path / "home" / "keys.json"
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o600
    assert json.loads(keys.read_text())["sealed"] is True


def test_init_without_passphrase_source_fails_cleanly(carnet: Run, tmp_path: Path) -> None:
    result = carnet("init", "--relay", "http://127.0.0.1:9")
    assert result.exit_code == 2 and "--no-passphrase" in result.output
    assert not (tmp_path / "home" / "keys.json").exists()


def test_init_rejects_a_bad_relay_url(carnet: Run, tmp_path: Path) -> None:
    result = carnet("init", "--relay", "relay.example", "--no-passphrase")
    assert result.exit_code == 2 and "http://" in result.output
    assert not (tmp_path / "home" / "keys.json").exists()


def test_device_list_shows_this_device(initialised: Run) -> None:
    rows = json.loads(initialised("device", "list", "--json").output)
    assert len(rows) == 1 and rows[0]["this"] is True


def test_sealed_device_syncs_with_passphrase_from_environment(
    carnet: Run, tmp_path: Path, monkeypatch
) -> None:
    secret = tmp_path / "pass"
    secret.write_text("a long passphrase")
    assert (
        carnet("init", "--relay", "http://127.0.0.1:9", "--passphrase-file", str(secret)).exit_code
        == 0
    )
    without = carnet("sync")
    assert without.exit_code == 1 and "sealed" in without.output
    wrong = tmp_path / "wrong"
    wrong.write_text("not it")
    bad = carnet("sync", "--passphrase-file", str(wrong))
    assert bad.exit_code == 1 and "Wrong passphrase" in bad.output
    monkeypatch.setenv("CARNET_PASSPHRASE_FILE", str(secret))
    unlocked = carnet("sync")  # unlocks, then fails only on the unreachable relay
    assert unlocked.exit_code == 1 and "Cannot reach the relay" in unlocked.output
