"""service.systemd against real AF_UNIX datagram sockets, and the relay's unit file."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from carnet.service import systemd

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "carnet-relay.service"
MAX_EXPOSURE = 1.5


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A stand-in for the service manager's notification socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        sock.settimeout(5)
        yield sock, str(tmp_path / "notify")


def test_notify_sends_one_datagram(manager: tuple[socket.socket, str]) -> None:
    sock, path = manager
    assert systemd.notify("READY=1", "STATUS=serving", env={"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving"


def test_notify_reaches_an_abstract_socket() -> None:
    name = f"carnet-test-{os.getpid()}-{os.urandom(4).hex()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert systemd.notify("STOPPING=1", env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"STOPPING=1"


@pytest.mark.parametrize("address", [None, "", "relative/path", "/nonexistent/notify"])
def test_notify_without_a_manager_is_a_quiet_no(address: str | None) -> None:
    env = {} if address is None else {"NOTIFY_SOCKET": address}
    assert not systemd.notify("READY=1", env=env)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert systemd.watchdog_interval(env, pid=4242) == expected


async def test_watchdog_pings_until_stopped(manager: tuple[socket.socket, str]) -> None:
    sock, path = manager
    task = systemd.start_watchdog({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})
    assert task is not None
    loop = asyncio.get_running_loop()
    pings = [await loop.run_in_executor(None, sock.recv, 100) for _ in range(3)]
    await systemd.stop_watchdog(task)
    assert pings == [b"WATCHDOG=1"] * 3
    assert systemd.start_watchdog({}) is None
    await systemd.stop_watchdog(None)


def test_journal_priorities_prefix_every_line() -> None:
    formatter = systemd.JournalFormatter("%(message)s")
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "one\ntwo", None, None)
    assert formatter.format(record) == "<4>one\n<4>two"
    levels = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]
    assert [systemd.journal_priority(level) for level in levels] == [7, 6, 4, 3, 3]


def test_logging_prefixes_only_when_stderr_is_the_announced_journal(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        with (tmp_path / "journal").open("w") as stream:
            st = os.fstat(stream.fileno())
            env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
            systemd.setup_logging(logging.INFO, stream, env)
            logging.getLogger("carnet.test").info("to the journal")
            systemd.setup_logging(logging.INFO, stream, {"JOURNAL_STREAM": "1:2"})
            logging.getLogger("carnet.test").error("inherited variable, redirected stream")
        lines = (tmp_path / "journal").read_text().splitlines()
        assert lines[0] == "<6>carnet.test: to the journal"
        assert re.match(r"^\d{4}-\d\d-\d\d .* ERROR carnet.test: inherited", lines[1])
    finally:
        root.handlers[:], root.level = saved[0], saved[1]


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed, so the unit file cannot be checked")
    return subprocess.run(
        ["systemd-analyze", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_unit_file_is_hardened() -> None:
    done = _analyze("security", "--offline=true", str(UNIT))
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, done.stdout[-2000:] + done.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, done.stdout


def test_unit_file_verifies(tmp_path: Path) -> None:
    # verify insists the ExecStart= binary exists, and /usr/local/bin/carnet-relay need not
    # on a test machine: check a copy that runs this interpreter instead.
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/carnet-relay serve" in text
    copy = tmp_path / UNIT.name
    copy.write_text(
        text.replace("/usr/local/bin/carnet-relay", f"{sys.executable} -m carnet.relay.main")
    )
    done = _analyze("verify", str(copy))
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
