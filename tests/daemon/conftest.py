from pathlib import Path

import pytest

from carnet.daemon.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "store.sqlite3")
    with s.transaction():
        s.set_meta("device_id", "a1b2c3d4e5f60708")
    yield s
    s.close()
