from pathlib import Path

import pytest

from carnet.daemon import passphrase
from carnet.protocol.errors import KeyFileError, UsageError


@pytest.fixture(autouse=True)
def no_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARNET_PASSPHRASE_FILE", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)


def test_sources_in_order_of_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, env_file, creds = tmp_path / "a", tmp_path / "b", tmp_path / "creds"
    explicit.write_text("from flag\n")
    env_file.write_text("from env\n")
    creds.mkdir()
    (creds / passphrase.CREDENTIAL_NAME).write_text("from systemd")
    assert passphrase.resolve() is None
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert passphrase.resolve() == b"from systemd"
    monkeypatch.setenv("CARNET_PASSPHRASE_FILE", str(env_file))
    assert passphrase.resolve() == b"from env"
    assert passphrase.resolve(explicit) == b"from flag"


def test_unusable_sources_are_one_line_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(UsageError, match="is empty"):
        passphrase.resolve(empty)
    with pytest.raises(UsageError, match="cannot read passphrase file"):
        passphrase.resolve(tmp_path / "missing")
    with pytest.raises(KeyFileError, match="--passphrase-file"):
        passphrase.required()
