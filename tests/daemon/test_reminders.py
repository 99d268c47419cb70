import asyncio
import logging
import shlex
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carnet.daemon.carnetd.reminders import (
    Reminders,
    due_now,
    format_lead,
    mark_fired,
    next_due,
    reminder_text,
    render,
)
from carnet.daemon.carnetd.status import StatusBoard
from carnet.daemon.config import Config
from carnet.daemon.store import Store

HOUR = 3600
DAY = 86400


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def add(store: Store, seconds: float, **fields: str) -> str:
    record = store.add({"practitioner": "Dr Alice Martin", "start": at(seconds), **fields})
    return str(record["id"])


def test_due_now_is_what_falls_within_a_lead_of_now(store: Store) -> None:
    soon = add(store, 30 * 60)
    add(store, 3 * DAY)  # nothing due yet
    add(store, -HOUR)  # already past: never reminded
    add(store, 20 * 60, status="cancelled")
    gone = add(store, 10 * 60)
    store.delete(gone)
    dues = due_now(store, [DAY, 2 * HOUR], time.time())
    assert [d.record["id"] for d in dues] == [soon]
    # Both leads are due together: one reminder, the nearest lead's, stands for both.
    assert dues[0].leads == (DAY, 2 * HOUR)
    assert dues[0].lead == 2 * HOUR


def test_a_fired_reminder_is_not_due_again_until_the_appointment_moves(store: Store) -> None:
    record = add(store, HOUR)
    mark_fired(store, due_now(store, [2 * HOUR], time.time()))
    assert due_now(store, [2 * HOUR], time.time()) == []
    store.edit(record, {"start": at(90 * 60), "end": at(100 * 60)})
    assert [d.record["id"] for d in due_now(store, [2 * HOUR], time.time())] == [record]


def test_next_due_is_the_earliest_unfired_reminder_ahead(store: Store) -> None:
    now = time.time()
    assert next_due(store, [HOUR], now) is None
    add(store, 3 * HOUR)
    add(store, 5 * HOUR)
    due = next_due(store, [HOUR, 2 * HOUR], now)
    assert due is not None
    assert 1 * HOUR - 5 < due - now < 1 * HOUR + 5


def test_text_and_argv_template() -> None:
    record = {
        "practitioner": "Dr Alice Martin",
        "specialty": "cardiology",
        "location": "12 rue de la Paix",
        "reason": "checkup",
        "start": "2030-01-01T10:30:00+01:00",
    }
    values = reminder_text(record, 2 * HOUR)
    assert values["lead"] == "2h"
    assert "Dr Alice Martin (cardiology)" in values["summary"]
    assert "12 rue de la Paix" in values["summary"]
    argv = render(["notify-send", "carnet {lead}", "{summary}", "{nope}", "$(rm -rf ~)"], values)
    assert argv[:2] == ["notify-send", "carnet 2h"]
    assert argv[2] == values["summary"]
    assert argv[3:] == ["{nope}", "$(rm -rf ~)"]  # no shell: nothing is expanded


@pytest.mark.parametrize(
    ("seconds", "text"), [(2, "2s"), (600, "10m"), (DAY, "1d"), (5400, "1h30m"), (DAY + 60, "1d1m")]
)
def test_format_lead(seconds: int, text: str) -> None:
    assert format_lead(seconds) == text


async def test_fires_once_on_time_through_the_command_and_the_log(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "reminders.txt"
    writer = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"
    command = shlex.join([sys.executable, "-c", writer, str(out), "{lead}|{summary}"])
    config = Config(reminder_leads=["1s"], reminder_command=command)
    record = add(store, 1.6)
    start = time.time() + 1.6
    reminders = Reminders(store, lambda: config, StatusBoard(tmp_path / "status.json"))
    caplog.set_level(logging.INFO)
    task = asyncio.create_task(reminders.run())
    try:
        deadline = time.monotonic() + 5
        while not out.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        fired = time.time()
        reminders.changed()  # a recompute must not fire it again
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
    assert out.read_text().splitlines() == [out.read_text().splitlines()[0]]
    assert out.read_text().startswith("1s|Dr Alice Martin")
    assert start - 1.05 <= fired <= start - 0.2
    assert "reminder fired (lead 1s)" in caplog.text
    assert "Alice" not in caplog.text and record not in caplog.text
