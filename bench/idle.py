"""Idle cost: carnetd holding 10,000 records, subscribed to a relay, with nothing to do.

    python -m bench idle [SECONDS] [RECORDS] [--cold]

Measures, over SECONDS (default 60) after the first sync has settled, the CPU
time of the daemon (all its threads, from /proc/PID/stat) as a percentage of
one core, and its resident memory (VmRSS now, VmHWM at its peak). The records
are synced before the daemon starts; with --cold the daemon uploads them itself
first, which shows what a bulk round leaves behind.
Target: at most 0.5 % of one core and 60 MB resident.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from bench.sync import make_device, sample, timed_sync
from carnet.daemon.carnetd.process import CarnetdProcess
from carnet.daemon.keys import Secrets
from carnet.relay.process import start_relay

SETTLE_TIMEOUT = 120.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process, all threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values


def pending(store: Path) -> int:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        ops = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        entries = conn.execute("SELECT count(*) FROM feed_out WHERE pushed = 0").fetchone()[0]
        return int(ops + entries)
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    numbers = [a for a in argv if not a.startswith("--")]
    seconds = float(numbers[0]) if numbers else 60.0
    records = int(numbers[1]) if len(numbers) > 1 else 10_000
    cold = "--cold" in argv
    with tempfile.TemporaryDirectory() as tmp, start_relay(Path(tmp) / "relay") as relay:
        home = Path(tmp) / "a"
        device = make_device(home, relay.url, Secrets.generate())
        device.store.import_records(sample(i) for i in range(records))
        if not cold:
            # Synced before the daemon starts: what is measured is a daemon that has
            # nothing to do, not the one-off upload of 10,000 records.
            asyncio.run(timed_sync(device, relay.url))
        device.close()
        with CarnetdProcess(home).start() as daemon:
            deadline = time.monotonic() + SETTLE_TIMEOUT
            while pending(home / "carnet.sqlite3") and time.monotonic() < deadline:
                time.sleep(0.2)
            if pending(home / "carnet.sqlite3"):
                print("the first sync did not finish", file=sys.stderr)
                return 1
            time.sleep(2.0)  # let the last round's after-effects pass
            before = cpu_seconds(daemon.pid)
            time.sleep(seconds)
            used = cpu_seconds(daemon.pid) - before
            memory = memory_mb(daemon.pid)
            subscribed = daemon.status().get("subscribed")
    print(f"records: {records}, idle for {seconds:.0f} s, subscribed: {subscribed}, cold: {cold}")
    print(f"cpu: {100 * used / seconds:.3f} % of one core ({used * 1000:.0f} ms)")
    print(f"memory: {memory['VmRSS']:.1f} MB resident, {memory['VmHWM']:.1f} MB at peak")
    return 0
