import json
import os
import stat
from pathlib import Path

import pytest

from carnet.daemon.keys import Secrets, is_sealed, read_key_file, write_key_file
from carnet.protocol.errors import KeyFileError, WrongPassphrase


def test_plain_key_file_is_0600_and_roundtrips(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    secrets = Secrets.generate()
    write_key_file(path, secrets, None)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_key_file(path, None) == secrets
    assert not is_sealed(path)


def test_sealed_key_file_needs_the_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    secrets = Secrets.generate()
    write_key_file(path, secrets, b"correct horse")
    assert is_sealed(path)
    assert secrets.vault_key.hex() not in path.read_text()
    assert read_key_file(path, b"correct horse") == secrets
    with pytest.raises(WrongPassphrase):
        read_key_file(path, b"wrong")
    with pytest.raises(KeyFileError, match="sealed"):
        read_key_file(path, None)


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, Secrets.generate(), None)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_key_file(path, None)


def test_damaged_key_file_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, Secrets.generate(), None)
    doc = json.loads(path.read_text())
    doc["secrets"]["vault"] = "zz"
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="damaged"):
        read_key_file(path, None)


def test_derived_keys_are_per_purpose_and_shared_by_devices() -> None:
    a = Secrets.generate()
    b = Secrets(device_seed=os.urandom(32), vault_key=a.vault_key)
    assert a.identity.encode() == b.identity.encode()
    assert a.vault_mailbox == b.vault_mailbox
    keys = a.vault_mailbox
    parts = {keys.mailbox_id, keys.entry_key, keys.tag_key, keys.read_seed, keys.write_seed}
    assert len(parts) == 5 and a.vault_key not in parts
    assert a.device_id != b.device_id
