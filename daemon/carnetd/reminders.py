"""Reminders of upcoming appointments, from the device itself (no server sees them).

Each (appointment, lead time) fires once: before delivering, the reminder is
recorded in the store (``reminders_fired``, keyed by the start it announced), so
a restart never repeats it and an appointment that moves is reminded again for
its new time. Reminders missed while the daemon was down fire at the next start
if the appointment is still ahead; when several leads of one appointment are due
together, one reminder (the nearest lead's) stands for all of them.

Scheduling is a timer to the next due reminder, recomputed whenever the store
changes (a sync, an import, a poke from the CLI) or the configuration is
reloaded. Delivery is the configured command, run without a shell with the
reminder's text in its arguments, and a log line that says only that a
reminder fired and its lead, never what it is about.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from carnet.daemon.carnetd.status import StatusBoard
from carnet.daemon.config import Config
from carnet.daemon.records import now_iso
from carnet.daemon.store import Store

log = logging.getLogger("carnetd.reminders")

# Appointments nobody needs reminding of.
SILENT_STATUSES = ("cancelled", "entered-in-error", "noshow", "fulfilled")
# The timer is re-armed at least this often, so a wall-clock jump or a suspended
# laptop delays a reminder by at most this much.
MAX_SLEEP = 900.0
# Wake a hair after the due instant, so that float rounding cannot find it not yet due.
SLACK = 0.002
COMMAND_TIMEOUT = 30.0

_ELIGIBLE = (
    f"deleted = 0 AND status NOT IN ({', '.join(repr(s) for s in SILENT_STATUSES)}) "
    "AND NOT EXISTS (SELECT 1 FROM reminders_fired f "
    "WHERE f.record = records.id AND f.lead = :lead AND f.start = records.start)"
)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Due:
    record: dict[str, Any]
    leads: tuple[int, ...]  # every lead now due for this appointment, nearest last

    @property
    def lead(self) -> int:
        return self.leads[-1]


def due_now(store: Store, leads: list[int], now: float) -> list[Due]:
    """Reminders due at `now` (not fired yet) of appointments still ahead."""
    found: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for lead in sorted(leads, reverse=True):
        cur = store.conn.execute(
            "SELECT id, practitioner, specialty, location, reason, start FROM records "
            f"WHERE start_ts > :now AND start_ts <= :now + :lead AND {_ELIGIBLE}",
            {"now": now, "lead": lead},
        )
        columns = [c[0] for c in cur.description]
        for row in cur:
            record = dict(zip(columns, row, strict=True))
            found.setdefault(record["id"], (record, []))[1].append(lead)
    return [Due(record, tuple(due)) for record, due in found.values()]


def next_due(store: Store, leads: list[int], now: float) -> float | None:
    """When the next reminder falls due after `now` (epoch seconds), if any."""
    times = []
    for lead in leads:
        start = store.conn.execute(
            f"SELECT min(start_ts) FROM records WHERE start_ts > :now + :lead AND {_ELIGIBLE}",
            {"now": now, "lead": lead},
        ).fetchone()[0]
        if start is not None:
            times.append(start - lead)
    return min(times, default=None)


def mark_fired(store: Store, dues: list[Due]) -> None:
    fired = now_iso()
    with store.transaction():
        store.conn.executemany(
            "INSERT OR IGNORE INTO reminders_fired (record, lead, start, fired) "
            "VALUES (?, ?, ?, ?)",
            [(d.record["id"], lead, d.record["start"], fired) for d in dues for lead in d.leads],
        )


def format_lead(seconds: int) -> str:
    """2h, 1d, 1h30m: the way leads are written in the configuration."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def reminder_text(record: dict[str, Any], lead: int) -> dict[str, str]:
    """The values a reminder command's arguments may name as ``{placeholder}``."""
    start = datetime.fromisoformat(record["start"]).astimezone()
    when = start.strftime("%a %d %b %H:%M")
    who = record["practitioner"] + (f" ({record['specialty']})" if record["specialty"] else "")
    where = f", {record['location']}" if record["location"] else ""
    return {
        "summary": f"{who}, {when}{where}",
        "practitioner": record["practitioner"],
        "specialty": record["specialty"],
        "location": record["location"],
        "reason": record["reason"],
        "start": record["start"],
        "when": when,
        "lead": format_lead(lead),
    }


def render(template: list[str], values: dict[str, str]) -> list[str]:
    """Fill ``{name}`` placeholders argument by argument (unknown ones stay as written)."""
    return [_PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), a) for a in template]


class Reminders:
    def __init__(self, store: Store, config: Callable[[], Config], board: StatusBoard) -> None:
        self.store = store
        self.config = config
        self.board = board
        self._changed = asyncio.Event()

    def changed(self) -> None:
        """The store or the configuration changed: recompute what is due."""
        self._changed.set()

    async def run(self) -> None:
        while True:
            self._changed.clear()
            leads = self.config().reminder_lead_seconds
            dues = due_now(self.store, leads, time.time())
            if dues:
                # Recorded first: a crash now loses a reminder rather than repeat it.
                mark_fired(self.store, dues)
                for due in dues:
                    await self._deliver(due)
            upcoming = next_due(self.store, leads, time.time())
            self.board.update(
                next_reminder=None
                if upcoming is None
                else datetime.fromtimestamp(upcoming, UTC).isoformat(timespec="seconds")
            )
            delay = MAX_SLEEP if upcoming is None else min(MAX_SLEEP, upcoming - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.0, delay) + SLACK)

    async def _deliver(self, due: Due) -> None:
        log.info("reminder fired (lead %s)", format_lead(due.lead))
        template = self.config().reminder_argv()
        if not template:
            return
        argv = render(template, reminder_text(due.record, due.lead))
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as exc:
            log.error("reminder command could not start: %s", exc.strerror)
            return
        try:
            code = await asyncio.wait_for(proc.wait(), COMMAND_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            log.error("reminder command killed after %.0f s", COMMAND_TIMEOUT)
            return
        if code != 0:
            log.warning("reminder command exited with status %d", code)
