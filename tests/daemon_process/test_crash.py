"""SIGKILL at random moments during large syncs and imports: nothing lost, nothing doubled."""

import json
import os
import random
import time
from pathlib import Path

from tests.daemon_process.conftest import StartDaemon
from tests.daemon_process.files import write_ics
from tests.daemon_process.harness import carnet, listed, stored, wait_until

KILLS_DURING_SYNC = 10
KILLS_DURING_IMPORT = 10
PER_FILE = 400


def test_kill_9_never_loses_or_duplicates(
    pair: tuple[Path, Path], daemon: StartDaemon, tmp_path: Path
) -> None:
    a, b = pair
    seed = time.time_ns()
    print(f"random seed {seed}")  # shown by pytest if the test fails, to replay it
    rng = random.Random(seed)
    first, second = daemon(a), daemon(b)

    # A large change on A (one CLI import) is being pushed by A and pulled by B
    # when one of them dies.
    for n in range(KILLS_DURING_SYNC):
        carnet(a, "import", str(write_ics(tmp_path / f"sync{n}.ics", PER_FILE, f"sync{n}")))
        victim = (first, second)[n % 2]
        time.sleep(rng.uniform(0.0, 0.4))
        victim.kill()
        victim.start()

    # Files dropped in A's inbox (written aside, then renamed in, as programs do)
    # are being read, imported or moved when A dies.
    inbox = a / "inbox"
    for n in range(KILLS_DURING_IMPORT):
        staged = write_ics(tmp_path / f"drop{n}.ics", PER_FILE, f"drop{n}")
        os.rename(staged, inbox / staged.name)
        time.sleep(rng.uniform(0.2, 1.2))
        first.kill()
        first.start()

    total = (KILLS_DURING_SYNC + KILLS_DURING_IMPORT) * PER_FILE
    wait_until(lambda: len(stored(a)) == total, 60, "every import on A")
    wait_until(lambda: len(stored(b)) == total, 60, "everything on B")
    assert sorted(p.name for p in (inbox / "imported").iterdir()) == sorted(
        f"drop{n}.ics" for n in range(KILLS_DURING_IMPORT)
    )
    assert [p for p in inbox.iterdir() if p.is_file()] == []
    assert list((inbox / "rejected").iterdir()) == []
    on_a, on_b = listed(a), listed(b)
    assert on_a == on_b
    assert len({r["source"] for r in on_a}) == total  # no duplicate

    def pushed_all(home: Path) -> bool:
        return bool(json.loads(carnet(home, "status", "--json").stdout)["pending"] == 0)

    wait_until(lambda: pushed_all(a) and pushed_all(b), 20, "nothing left to push")
    assert first.stop() == 0 and second.stop() == 0
