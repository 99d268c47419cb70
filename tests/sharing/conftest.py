"""Patients and practitioners as separate CARNET_HOMEs, against the real relay subprocess.

Commands run in-process through click's CliRunner (a subprocess per command
would cost most of the time budget); `carnet pair` without a code, which waits
for the other side, runs as a real subprocess.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt
from nacl.exceptions import CryptoError

from carnet.cli.main import cli
from carnet.daemon.device import Device
from carnet.daemon.paths import Paths
from tests.support.relay_process import RelayProcess, start_relay

ENTRY_AD = b"carnet/entry/v1"  # docs/protocol.md, "Entry envelope"


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """One relay per test module; it sweeps expired mailboxes every second."""
    root = tmp_path_factory.mktemp("relay")
    config = root / "relay.toml"
    config.write_text("sweep_interval = 1\n")
    with start_relay(root / "data", "--config", str(config)) as process:
        yield process


class Person:
    """One device of one identity, driven through the `carnet` command line."""

    def __init__(self, home: Path) -> None:
        self.home = home

    @property
    def env(self) -> dict[str, str]:
        return {"CARNET_HOME": str(self.home)}

    def run(self, *args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(cli, list(args), env=self.env)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == code, f"carnet {' '.join(args)}: {result.output}"
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`carnet ARGS` as a subprocess, for commands that wait (`pair` without a code)."""
        return subprocess.Popen(
            [sys.executable, "-m", "carnet.cli.main", *args],
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @contextmanager
    def device(self) -> Iterator[Device]:
        """The library's view of this device, unlocked (keys without passphrase)."""
        device = Device.open(Paths.resolve(self.home))
        device.unlock()
        try:
            yield device
        finally:
            device.close()

    def card(self) -> str:
        return str(self.json("contact")["card"])


def init(home: Path, relay_url: str, name: str, *extra: str) -> Person:
    person = Person(home)
    person.run("init", "--relay", relay_url, "--no-passphrase", "--name", name, *extra)
    return person


def join(home: Path, first: Person, relay_url: str, device_name: str) -> Person:
    code = first.run("device", "invite").stdout.strip().splitlines()[-1]
    person = Person(home)
    person.run(
        "init",
        "--relay",
        relay_url,
        "--join",
        code,
        "--no-passphrase",
        "--device-name",
        device_name,
    )
    return person


def add(person: Person, specialty: str, start: str, practitioner: str = "Dr Martin") -> str:
    """Add an appointment on `person`'s device; returns its id."""
    added = person.run(
        "add", "--practitioner", practitioner, "--specialty", specialty, "--start", start
    )
    return added.stdout.strip()


def pinned_pair(root: Path, relay_url: str) -> tuple[Person, Person]:
    """Patient "Ana" and practitioner "Dr Martin", each pinned by the other (as
    "martin" and "ana"); the practitioner's introduction mailbox is on the relay."""
    patient = init(root / "patient", relay_url, "Ana")
    doctor = init(root / "doctor", relay_url, "Dr Martin", "--practitioner")
    patient.run("contact", "add", doctor.card(), "--name", "martin")
    doctor.run("contact", "add", patient.card(), "--name", "ana")
    doctor.run("sync")
    return patient, doctor


def relay_rows(relay: RelayProcess) -> list[tuple[bytes, bytes, int, bytes]]:
    """(mailbox, writer, seq, data) of every entry the relay stores."""
    db = sqlite3.connect(next(relay.data_dir.glob("*.sqlite3")))
    try:
        return db.execute("SELECT mailbox, writer, seq, data FROM entries").fetchall()
    finally:
        db.close()


def relay_mailboxes(relay: RelayProcess) -> set[bytes]:
    db = sqlite3.connect(next(relay.data_dir.glob("*.sqlite3")))
    try:
        return {row[0] for row in db.execute("SELECT id FROM mailboxes")}
    finally:
        db.close()


def opens(row: tuple[bytes, bytes, int, bytes], entry_key: bytes) -> bool:
    """Whether `entry_key` decrypts this stored entry (its associated data from the row)."""
    mailbox, writer, seq, data = row
    ad = ENTRY_AD + bytes(mailbox) + bytes(writer) + seq.to_bytes(8, "big")
    try:
        crypto_aead_xchacha20poly1305_ietf_decrypt(data[25:], ad, data[1:25], entry_key)
    except CryptoError:
        return False
    return True
