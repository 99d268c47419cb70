"""Two daemons of one patient keep their stores in step through the real relay."""

import json
from pathlib import Path

from tests.daemon_process.conftest import StartDaemon
from tests.daemon_process.harness import carnet, listed, stored, wait_until
from tests.support.relay_process import RelayProcess


def ids(home: Path) -> set[str]:
    return {r["id"] for r in stored(home)}


def notes_of(home: Path, record: str) -> str | None:
    return next((r["notes"] for r in stored(home) if r["id"] == record), None)


def test_a_change_on_one_device_lands_on_the_other_without_sync(
    pair: tuple[Path, Path], daemon: StartDaemon
) -> None:
    a, b = pair
    first, second = daemon(a), daemon(b)
    record = carnet(a, "add", "--practitioner", "Dr Live", "--start", "2031-03-01T09:00Z")
    added = record.stdout.strip()
    wait_until(lambda: added in ids(b), 10, "the record on B")
    carnet(b, "edit", added, "--notes", "bring the x-rays")
    wait_until(lambda: notes_of(a, added) == "bring the x-rays", 10, "B's edit on A")

    status = json.loads(carnet(a, "status", "--json").stdout)
    assert status["pending"] == 0
    assert status["daemon"]["running"] is True
    assert status["daemon"]["pid"] == first.pid
    assert status["daemon"]["subscribed"] is True
    assert status["daemon"]["last_sync_result"] == "ok"
    assert "Dr Live" not in first.log() + second.log()
    assert added not in first.log() + second.log()


def test_both_daemons_recover_from_a_relay_outage(
    pair: tuple[Path, Path], relay: RelayProcess, daemon: StartDaemon
) -> None:
    a, b = pair
    first, second = daemon(a), daemon(b)
    relay.stop()
    for n in range(3):
        carnet(a, "add", "--practitioner", f"Dr Offline A{n}", "--start", "2031-04-01T09:00Z")
        carnet(b, "add", "--practitioner", f"Dr Offline B{n}", "--start", "2031-04-02T09:00Z")
    wait_until(lambda: first.status().get("relay_reachable") is False, 10, "A offline")
    wait_until(lambda: second.status().get("relay_reachable") is False, 10, "B offline")
    assert json.loads(carnet(a, "status", "--json").stdout)["pending"] > 0
    assert first.running and second.running

    relay.start()  # same data folder, same port
    wait_until(lambda: len(stored(a)) == len(stored(b)) == 6, 40, "convergence")
    assert listed(a) == listed(b)
    wait_until(lambda: first.status().get("subscribed") and second.status().get("subscribed"), 10)
    for home in (a, b):
        assert json.loads(carnet(home, "status", "--json").stdout)["pending"] == 0
    assert "relay unreachable" in first.log() and "relay reachable again" in first.log()
