"""Propagation: how long a change made with the CLI on device A takes to reach B's store.

    python -m bench propagation [EDITS] [--subprocess]

Two devices of one patient, each with its own carnetd, and a real relay, all
on loopback. For each edit the clock starts when `carnet edit` on A returns
(run in-process by default, so the clock starts right after the command's
commit and poke; --subprocess runs a whole `carnet` process per edit) and
stops when B's SQLite file, polled read-only every 0.2 ms, holds the new value.
Target: p50 <= 50 ms and p99 <= 250 ms over 200 edits. The relay runs without
rate limits: both devices share one address here, at a pace no person edits at.
"""

from __future__ import annotations

import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner
from nacl.utils import random

from bench.sync import make_device, sample
from carnet.cli.main import cli
from carnet.daemon.carnetd.process import CarnetdProcess
from carnet.daemon.keys import Secrets
from carnet.relay.process import start_relay

POLL = 0.0002
TIMEOUT = 10.0


def edit_in_process(home: Path, record: str, notes: str) -> None:
    result = CliRunner().invoke(
        cli, ["edit", record, "--notes", notes], env={"CARNET_HOME": str(home)}
    )
    if result.exit_code != 0:
        raise RuntimeError(result.output)


def edit_in_subprocess(home: Path, record: str, notes: str) -> None:
    command = [sys.executable, "-c", "from carnet.cli.main import main; main()"]
    subprocess.run([*command, "--home", str(home), "edit", record, "--notes", notes], check=True)


def wait_for(conn: sqlite3.Connection, record: str, notes: str) -> float:
    """Seconds until B's store shows `notes` on `record` (from the call), or inf."""
    started = time.perf_counter()
    while time.perf_counter() - started < TIMEOUT:
        row = conn.execute("SELECT notes FROM records WHERE id = ?", (record,)).fetchone()
        if row is not None and row[0] == notes:
            return time.perf_counter() - started
        time.sleep(POLL)
    return float("inf")


def report(latencies: list[float]) -> None:
    seen = sorted(x for x in latencies if x != float("inf"))
    lost = len(latencies) - len(seen)
    cuts = statistics.quantiles(seen, n=100, method="inclusive")
    ms = {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98], "max": seen[-1]}
    print(f"edits: {len(latencies)} ({lost} not seen within {TIMEOUT:.0f} s)")
    print("  ".join(f"{name} {value * 1000:.1f} ms" for name, value in ms.items()))


def main(argv: list[str]) -> int:
    edits = int(next((a for a in argv if a.isdigit()), "200"))
    edit = edit_in_subprocess if "--subprocess" in argv else edit_in_process
    # Both devices reach the relay from 127.0.0.1, at about 40 edits a second:
    # the relay's per-address rate limit (100 requests/s) would answer 429 and
    # add its 1 s Retry-After to the latency measured here.
    unlimited = ("--rate-per-address", "0", "--rate-per-connection", "0")
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_relay(Path(tmp) / "relay", *unlimited) as relay,
    ):
        root = Path(tmp)
        secrets = Secrets.generate()
        a = make_device(root / "a", relay.url, secrets)
        b = make_device(root / "b", relay.url, Secrets(random(32), secrets.vault_key))
        record = str(a.store.add(sample(0))["id"])
        a.close()
        b.close()
        with CarnetdProcess(root / "a").start(), CarnetdProcess(root / "b").start():
            conn = sqlite3.connect(f"file:{root / 'b' / 'carnet.sqlite3'}?mode=ro", uri=True)
            if wait_for(conn, record, "") == float("inf"):
                print("B never received the first record", file=sys.stderr)
                return 1
            latencies = []
            for n in range(edits):
                notes = f"edit {n}"
                edit(root / "a", record, notes)
                latencies.append(wait_for(conn, record, notes))
            conn.close()
    print(f"mode: {'subprocess' if edit is edit_in_subprocess else 'in-process'} CLI")
    report(latencies)
    return 0
