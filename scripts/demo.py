"""carnet's main job in one run: two devices of one patient, synced through a blind relay.

Starts a local relay on its embedded SQLite store, creates a patient's laptop,
adds appointments there, joins a phone with a one-time code, syncs, shows the
appointments on the phone, then prints what the relay actually stored.
"""

from __future__ import annotations

import shlex
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from carnet.relay.process import start_relay

APPOINTMENTS = [
    {
        "practitioner": "Dr Jeanne Martin",
        "practitioner-id": "rpps:10003456789",
        "specialty": "cardiology",
        "start": "2026-12-14T09:30+01:00",
        "location": "Hôpital Lariboisière, Paris",
        "reason": "Palpitations, ECG follow-up",
    },
    {
        "practitioner": "Dr Karim Benali",
        "specialty": "psychiatry",
        "start": "2026-12-17T18:00+01:00",
        "reason": "Monthly consultation",
    },
    {
        "practitioner": "Dr Claire Dubois",
        "specialty": "gynaecology",
        "start": "2027-01-08T11:15+01:00",
        "location": "Cabinet Dubois, Lyon",
        "notes": "Bring the ultrasound report",
    },
]


def carnet(home: Path, *args: str) -> str:
    shown = " ".join(shlex.quote(a) for a in args)
    print(f"\n[{home.name}] $ carnet {shown}")
    result = subprocess.run(
        [sys.executable, "-m", "carnet.cli.main", *args],
        env={"CARNET_HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    print(result.stdout.rstrip())
    if result.returncode != 0:
        sys.exit(f"demo failed: {result.stderr.strip()}")
    return result.stdout


def show_relay_storage(data_dir: Path, secrets: list[str]) -> None:
    db = sqlite3.connect(f"file:{next(data_dir.glob('*.sqlite3'))}?mode=ro", uri=True)
    print("\n=== What the relay stored (all of it) ===")
    for (mailbox,) in db.execute("SELECT id FROM mailboxes"):
        print(f"mailbox {mailbox.hex()[:16]}…")
        rows = db.execute(
            "SELECT cursor, writer, seq, data FROM entries WHERE mailbox = ? ORDER BY cursor",
            (mailbox,),
        )
        for cursor, writer, seq, data in rows:
            print(
                f"  cursor {cursor:>3}  writer {writer.hex()[:12]}…  seq {seq:>2}  "
                f"{len(data):>6} bytes  {data[:24].hex()}…"
            )
    blob = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    found = [s for s in secrets if s.encode() in blob]
    print(
        f"\nSearched the relay's files for {len(secrets)} strings from the appointments: "
        f"{'FOUND ' + ', '.join(found) if found else 'none found'}."
    )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="carnet-demo-") as tmp:
        root = Path(tmp)
        laptop, phone = root / "laptop", root / "phone"
        with start_relay(root / "relay") as relay:
            print(f"Relay running at {relay.url} (data in {relay.data_dir})")
            carnet(
                laptop, "init", "--relay", relay.url, "--no-passphrase", "--device-name", "laptop"
            )
            for fields in APPOINTMENTS:
                carnet(laptop, "add", *(x for k, v in fields.items() for x in (f"--{k}", v)))
            carnet(laptop, "sync")
            code = carnet(laptop, "device", "invite").strip().splitlines()[-1]
            carnet(
                phone,
                "init",
                "--relay",
                relay.url,
                "--join",
                code,
                "--no-passphrase",
                "--device-name",
                "phone",
            )
            carnet(phone, "list")
            carnet(phone, "device", "list")
            secrets = [v for fields in APPOINTMENTS for k, v in fields.items() if k != "start"]
            relay.stop()
            show_relay_storage(relay.data_dir, [*secrets, "laptop", "phone"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
