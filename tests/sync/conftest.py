"""Devices of one patient against the real relay subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.relay_process import RelayProcess, start_relay


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    with start_relay(tmp_path / "relay") as process:
        yield process


class Device:
    """One device, driven through the real `carnet` command line."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "carnet.cli.main", *args],
            env={"CARNET_HOME": str(self.home), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"carnet {' '.join(args)} failed: {result.stderr}")
        return result

    def records(self) -> list[dict]:
        return json.loads(self.run("list", "--json").stdout)


@pytest.fixture
def pair(tmp_path: Path, relay: RelayProcess) -> tuple[Device, Device]:
    """Two devices of one patient: A initialised, B joined with A's invitation code."""
    a, b = Device(tmp_path / "a"), Device(tmp_path / "b")
    a.run("init", "--relay", relay.url, "--no-passphrase", "--device-name", "laptop")
    code = a.run("device", "invite").stdout.strip().splitlines()[-1]
    b.run("init", "--relay", relay.url, "--join", code, "--no-passphrase", "--device-name", "phone")
    return a, b
