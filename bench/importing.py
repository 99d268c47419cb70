"""Import: the 1,215 Synthea Encounters (a patient history) into a fresh store.

    python -m bench import [FILE]

Times the pipeline `carnet import` and the inbox share (parse and validate,
then store in one transaction), in-process, then `carnet import` end to end
as a subprocess (Python start-up included). FILE defaults to the shared
corpus's ``synthea-10-patients/Encounter.000.ndjson``. Target: under 2 s.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from carnet.daemon import importing
from carnet.daemon.config import Config
from carnet.daemon.device import Device
from carnet.daemon.paths import Paths

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
DEFAULT = CORPUS / "synthea-10-patients" / "Encounter.000.ndjson"


def fresh_device(root: Path) -> Device:
    return Device.create(Paths(root, root), Config(relay="http://127.0.0.1:9"), None)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT
    if not path.is_file():
        print(f"no file at {path} (the shared corpus sits beside the repository)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        device = fresh_device(Path(tmp) / "in-process")
        started = time.perf_counter()
        records = importing.parse(path)
        parsed = time.perf_counter()
        summary = importing.store_records(device.store, records)
        stored = time.perf_counter()
        device.close()

        cli_home = Path(tmp) / "cli"
        fresh_device(cli_home).close()
        command = [sys.executable, "-c", "from carnet.cli.main import main; main()"]
        began = time.perf_counter()
        subprocess.run(
            [*command, "--home", str(cli_home), "import", str(path)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        cli = time.perf_counter() - began
    print(f"file: {path.name}, {len(records)} records ({summary.added} added)")
    print(
        f"in-process: parse {parsed - started:.3f} s + store {stored - parsed:.3f} s"
        f" = {stored - started:.3f} s ({len(records) / (stored - started):,.0f} records/s)"
    )
    print(f"`carnet import` end to end: {cli:.3f} s")
    return 0
