"""Run a real ``carnetd`` in a subprocess, watched the way systemd watches it: for
integration tests and benchmarks.

    daemon = CarnetdProcess(home).start()     # returns once carnetd sent READY=1
    ...
    daemon.stop()                             # SIGTERM; returns the exit code

The daemon gets a real AF_UNIX datagram socket as ``NOTIFY_SOCKET``, read all
the time by a thread (``daemon.notify.messages()``), so callers wait for
``READY=1`` instead of sleeping. Its stderr (the log) goes to a file beside the
device folder, never to a pipe that could fill up and stall it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

# Inherited from a caller started by systemd, these would reach the real manager.
_SERVICE_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")


class ManagerSocket:
    """A stand-in for systemd's notify socket, read all the time as the real one is.

    An unread datagram socket fills up, and then the daemon's next notify blocks.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)  # so the reader notices `close`
        self.closed = False
        self.received: list[str] = []
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self.closed:
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            with self._arrived:
                self.received.append(message)
                self._arrived.notify_all()

    def wait_for(self, text: str, timeout: float, alive: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout
        with self._arrived:
            start = len(self.received)
            while not any(text in m for m in self.received[start:]):
                if not alive():
                    raise RuntimeError(f"carnetd exited while waiting for {text!r}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no {text!r} after {timeout}s; got {self.received}")
                self._arrived.wait(0.1)

    def messages(self) -> list[str]:
        with self._arrived:
            return list(self.received)

    def close(self) -> None:
        self.closed = True
        self._reader.join(5)
        self.sock.close()
        self.path.unlink(missing_ok=True)


class CarnetdProcess:
    """One `carnetd` subprocess over a device folder; restartable."""

    def __init__(self, home: Path, env: dict[str, str] | None = None, *args: str) -> None:
        self.home = home
        self.args = args
        self.env = {k: v for k, v in os.environ.items() if k not in _SERVICE_VARIABLES}
        self.env["CARNET_HOME"] = str(home)
        self.env.update(env or {})
        self.log_path = home.with_name(home.name + "-carnetd.log")
        self.notify = ManagerSocket(home.with_name(home.name + ".notify"))
        self.env["NOTIFY_SOCKET"] = str(self.notify.path)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready: bool = True, timeout: float = 20.0) -> Self:
        if self.running:
            raise RuntimeError("carnetd is already running")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "carnet.daemon.main", *self.args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        if ready:
            self.wait_for("READY=1", timeout)
        return self

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        self.notify.wait_for(text, timeout, lambda: self.running)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("carnetd was not started")
        return self.proc.pid

    def send(self, signum: signal.Signals) -> None:
        if self.proc is not None:
            self.proc.send_signal(signum)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def status(self) -> dict[str, Any]:
        path = self.home / "carnetd.status.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def close(self) -> None:
        self.kill()
        self.notify.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.running:
            self.stop()
        self.close()
