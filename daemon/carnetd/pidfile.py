"""One carnetd per device: an flock on ``carnetd.pid``, which also holds its pid.

The kernel drops the lock when the process dies, even by SIGKILL, so a stale
file never blocks a restart and `carnet status` can tell a live daemon from a
leftover file by trying the lock.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from carnet.protocol.errors import DaemonAlreadyRunning

# `carnet status` probes the lock for an instant; a daemon starting at that very
# moment waits this long rather than mistaking the probe for another daemon.
ACQUIRE_WAIT = 2.0
ACQUIRE_TRIES = 40


class PidFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        for _ in range(ACQUIRE_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                time.sleep(ACQUIRE_WAIT / ACQUIRE_TRIES)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            return
        os.close(fd)
        raise DaemonAlreadyRunning(f"(pid {read_pid(self.path) or '?'})")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock; the file stays, harmless
            self._fd = None


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def running_pid(path: Path) -> int | None:
    """The pid of the carnetd holding `path`'s lock, or None if none runs."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_pid(path) or -1
    finally:
        os.close(fd)  # also releases the shared lock if we got it
    return None
