"""What the daemon's integration tests share: devices, the CLI, real carnetd processes.

Daemons are ``carnet.daemon.carnetd.process.CarnetdProcess``: real subprocesses
with a real notify socket, so tests wait for ``READY=1`` instead of sleeping.
The CLI runs in-process (click's runner): it is the same code as the `carnet`
command, including the poke it sends after a write, without a Python start-up
per call.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from carnet.cli.main import cli
from carnet.daemon.carnetd.process import CarnetdProcess

OFFLINE_RELAY = "http://127.0.0.1:9"  # the discard port: connections are refused at once


def carnet(home: Path, *args: str, check: bool = True) -> Result:
    """Run `carnet ARGS` against the device in `home`."""
    result = CliRunner().invoke(cli, list(args), env={"CARNET_HOME": str(home)})
    if check:
        assert result.exit_code == 0, f"carnet {' '.join(args)}: {result.output}"
    return result


def init_device(home: Path, relay: str = OFFLINE_RELAY) -> Path:
    carnet(home, "init", "--relay", relay, "--no-passphrase", "--device-name", home.name)
    return home


def join_device(first: Path, home: Path, relay: str) -> Path:
    code = carnet(first, "device", "invite").stdout.strip().splitlines()[-1]
    carnet(home, "init", "--relay", relay, "--join", code, "--no-passphrase")
    return home


def wait_until(check: Callable[[], Any], timeout: float, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def stored(home: Path) -> list[dict[str, Any]]:
    """The device's records, read straight from its SQLite file (read-only)."""
    conn = sqlite3.connect(f"file:{home / 'carnet.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        cur = conn.execute(
            "SELECT id, practitioner, start, status, notes, source FROM records "
            "WHERE deleted = 0 ORDER BY id"
        )
        columns = [c[0] for c in cur.description]
        return [dict(zip(columns, row, strict=True)) for row in cur]
    finally:
        conn.close()


def listed(home: Path) -> list[dict[str, Any]]:
    """`carnet list --json`: what the patient sees."""
    return list(json.loads(carnet(home, "list", "--json").stdout))


class Daemon(CarnetdProcess):
    """carnetd over a test device: the inbox settles fast, so tests need not wait long."""

    def __init__(self, home: Path, env: dict[str, str] | None = None, *args: str) -> None:
        super().__init__(home, {"CARNET_INBOX_SETTLE_MS": "200", **(env or {})}, *args)
