"""carnetd's supervisor: a part failing with a bug is logged without its message."""

from __future__ import annotations

import asyncio
import logging

import pytest

from carnet.daemon.carnetd.supervisor import Supervisor

CONTENT = "MRKpractitioner Dr Dupont, cardiology"  # what an exception's message might quote


def test_a_failed_part_logs_its_frames_never_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def part() -> None:
        raise KeyError(CONTENT)

    async def main() -> Supervisor:
        supervisor = Supervisor.__new__(Supervisor)  # only what _ended uses
        supervisor._stop, supervisor._failed = asyncio.Event(), False
        task = asyncio.get_running_loop().create_task(part(), name="sync")
        await asyncio.gather(task, return_exceptions=True)
        supervisor._ended(task)
        return supervisor

    with caplog.at_level(logging.ERROR, logger="carnetd"):
        supervisor = asyncio.run(main())
    assert supervisor._failed and supervisor._stop.is_set()
    assert "sync failed (KeyError)" in caplog.text
    assert "in part" in caplog.text  # the frames stay, to find the bug
    assert "MRK" not in caplog.text
