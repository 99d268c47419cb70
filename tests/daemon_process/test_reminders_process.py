"""Reminders from a real carnetd: on time, once, and not again after a restart."""

import shlex
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.daemon_process.conftest import StartDaemon
from tests.daemon_process.harness import carnet, init_device, wait_until

# Appends "<time> <lead> <summary>" to the file named first: a reminder command
# that leaves evidence, run (like any reminder command) without a shell.
RECORDER = "import sys, time; open(sys.argv[1], 'a').write(f'{time.time()} {sys.argv[2]}\\n')"


def starting_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def fired(log: Path) -> list[tuple[float, str]]:
    if not log.exists():
        return []
    lines = log.read_text().splitlines()
    return [(float(when), rest) for when, rest in (line.split(" ", 1) for line in lines)]


def test_reminders_fire_once_on_time_and_not_again_after_a_restart(
    tmp_path: Path, daemon: StartDaemon
) -> None:
    home = init_device(tmp_path / "a")
    out = tmp_path / "reminders.txt"
    command = shlex.join([sys.executable, "-c", RECORDER, str(out), "{lead} {summary}"])
    env = {"CARNET_REMINDER_COMMAND": command, "CARNET_REMINDER_LEADS": "3s"}
    carnetd = daemon(home, env)

    start = time.time() + 5
    carnet(home, "add", "--practitioner", "Dr Soon", "--start", starting_in(5))
    dropped = carnet(home, "add", "--practitioner", "Dr Cancelled", "--start", starting_in(5))
    carnet(home, "cancel", dropped.stdout.strip())
    wait_until(lambda: fired(out), 10, "the reminder")
    time.sleep(0.5)  # time enough for a wrong second reminder to show
    [(when, text)] = fired(out)
    assert text.startswith("3s Dr Soon")
    assert start - 3 - 0.05 <= when <= start - 3 + 1.0  # at its time, not early
    assert "reminder fired (lead 3s)" in carnetd.log()
    assert "Dr Soon" not in carnetd.log()

    # While the daemon is down, a reminder falls due: it fires once at the next start.
    wait_until(lambda: time.time() > start + 0.5, 10, "the first appointment to pass")
    assert carnetd.stop() == 0
    carnet(home, "add", "--practitioner", "Dr Later", "--start", starting_in(3600))
    carnetd = daemon(home, {**env, "CARNET_REMINDER_LEADS": "3s,2h"})
    wait_until(lambda: len(fired(out)) == 2, 10, "the missed reminder")
    assert carnetd.stop() == 0
    daemon(home, {**env, "CARNET_REMINDER_LEADS": "3s,2h"})
    time.sleep(1.0)
    texts = [text for _, text in fired(out)]
    assert [t.split(",")[0] for t in texts] == ["3s Dr Soon", "2h Dr Later"]
