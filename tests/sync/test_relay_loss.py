"""Nothing is lost when the relay loses a mailbox (erased, or restored from an old backup)."""

from __future__ import annotations

import json
import shutil

from tests.support.relay_process import RelayProcess

from .conftest import Device


def add(device: Device, practitioner: str, day: int) -> str:
    start = f"2027-06-{day:02d}T10:00Z"
    return device.run("add", "--practitioner", practitioner, "--start", start).stdout.strip()


def test_devices_resend_everything_and_converge_after_relay_data_loss(
    pair: tuple[Device, Device], relay: RelayProcess, tmp_path
) -> None:
    a, b = pair
    for day in range(1, 4):
        add(a, f"Dr A{day}", day)
        add(b, f"Dr B{day}", day)
    for device in (a, b, a):
        device.run("sync")
    assert len(a.records()) == len(b.records()) == 6
    relay.stop()
    shutil.rmtree(relay.data_dir)  # every mailbox and entry gone
    relay.restart()
    add(a, "Dr A after", 10)
    add(b, "Dr B after", 11)
    for device in (a, b, a, b):
        result = device.run("sync")  # each notices and sends its whole feed again
        assert result.returncode == 0
    assert a.records() == b.records()
    assert len(a.records()) == 8
    # A third device joining now finds every writer's chain complete from entry 1.
    c = Device(tmp_path / "c")
    code = a.run("device", "invite").stdout.strip().splitlines()[-1]
    c.run("init", "--relay", relay.url, "--join", code, "--no-passphrase")
    assert c.records() == a.records()
    alerts = json.loads(a.run("status", "--json").stdout)["alerts"]
    assert any("lost your devices' mailbox" in alert["message"] for alert in alerts)
