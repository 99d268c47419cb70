import asyncio
import json
import os
import socket
import stat
from pathlib import Path

import pytest

from carnet.daemon.carnetd import pidfile
from carnet.daemon.carnetd.control import ControlSocket, poke
from carnet.daemon.carnetd.pidfile import PidFile, running_pid
from carnet.daemon.carnetd.status import StatusBoard, daemon_state
from carnet.daemon.paths import Paths
from carnet.protocol.errors import DaemonAlreadyRunning


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    where = Paths.resolve(tmp_path / "home")
    where.ensure()
    return where


def test_poking_without_a_daemon_is_silent(paths: Paths) -> None:
    assert poke(paths) is False
    paths.daemon_socket.touch()  # a stale file where the socket was
    assert poke(paths) is False


async def test_the_control_socket_hears_pokes(paths: Paths) -> None:
    paths.daemon_socket.touch()  # left by a killed daemon: replaced
    heard = asyncio.Event()
    control = ControlSocket(paths.daemon_socket)
    assert await control.open(heard.set)
    assert stat.S_IMODE(os.stat(paths.daemon_socket).st_mode) == 0o600
    assert poke(paths) is True
    await asyncio.wait_for(heard.wait(), 2)
    control.close()
    assert not paths.daemon_socket.exists()


async def test_an_unusable_socket_path_is_a_warning_not_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    control = ControlSocket(tmp_path / ("x" * 120) / "carnetd.sock")
    assert await control.open(lambda: None) is False
    assert "control socket unavailable" in caplog.text


def test_one_daemon_per_device(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pidfile, "ACQUIRE_WAIT", 0.1)
    assert running_pid(paths.daemon_pid) is None
    first = PidFile(paths.daemon_pid)
    first.acquire()
    assert running_pid(paths.daemon_pid) == os.getpid()
    with pytest.raises(DaemonAlreadyRunning, match=f"pid {os.getpid()}"):
        PidFile(paths.daemon_pid).acquire()
    first.release()
    assert running_pid(paths.daemon_pid) is None  # the file stays; the lock tells


def test_status_file_and_systemd_status_lines(
    paths: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(str(tmp_path / "notify"))
    manager.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    board = StatusBoard(paths.daemon_status)
    board.update(state="running", subscribed=True, relay_reachable=True)
    assert manager.recv(1024).startswith(b"STATUS=live; last sync not yet")
    board.update(relay_reachable=False)
    assert manager.recv(1024) == b"STATUS=offline: relay unreachable, retrying"
    assert stat.S_IMODE(os.stat(paths.daemon_status).st_mode) == 0o600
    assert json.loads(paths.daemon_status.read_text())["relay_reachable"] is False
    manager.close()

    assert daemon_state(paths) == {"running": False}  # a file alone proves nothing
    lock = PidFile(paths.daemon_pid)
    lock.acquire()
    state = daemon_state(paths)
    lock.release()
    assert state["running"] is True
    assert state["pid"] == os.getpid()
    assert state["relay_reachable"] is False
