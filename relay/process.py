"""Run the real ``carnet-relay serve`` in a subprocess: for integration tests and benchmarks.

    with start_relay(tmp_path / "relay") as relay:
        client = RelayClient(relay.url)
        ...
        relay.restart()          # same data directory, same URL
    # stopped (SIGTERM) on leaving the block

The relay's stderr (its log) goes to ``relay.log_path``, never to a pipe that
could fill up and stall it; ``relay.logs()`` reads it.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

LISTENING = re.compile(rb"^carnet-relay listening on (http://\S+:(\d+))$")
# Inherited from a test runner started by systemd, these would make the relay talk to it.
_SERVICE_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")


class RelayProcess:
    """One relay on 127.0.0.1 over `data_dir`; restarts keep the port, hence the URL."""

    def __init__(
        self,
        data_dir: Path,
        extra_args: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.log_path = log_path or data_dir.with_name(data_dir.name + "-relay.log")
        self.env = {k: v for k, v in os.environ.items() if k not in _SERVICE_VARIABLES}
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.port = 0

    def command(self) -> list[str]:
        listen = [] if "--listen" in self.extra_args else ["--listen", f"127.0.0.1:{self.port}"]
        return [
            sys.executable,
            "-m",
            "carnet.relay.main",
            "serve",
            "--data",
            str(self.data_dir),
            *listen,
            *self.extra_args,
        ]

    def start(self, timeout: float = 20.0) -> RelayProcess:
        """Launch and wait for the listening line; raises RuntimeError with the log's tail."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("the relay is already running")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=subprocess.PIPE, stderr=log, env=self.env
            )
        line = self._read_line(timeout)
        match = LISTENING.match(line)
        if match is None:
            self.kill()
            raise RuntimeError(f"relay did not start: {line!r}\n{self.logs()[-2000:]}")
        self.url, self.port = match.group(1).decode(), int(match.group(2))
        return self

    def _read_line(self, timeout: float) -> bytes:
        assert self.proc is not None and self.proc.stdout is not None
        stdout = self.proc.stdout
        deadline = time.monotonic() + timeout
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self.kill()
                    raise RuntimeError(f"relay not listening after {timeout}s\n{self.logs()}")
                chunk = os.read(stdout.fileno(), 4096)
                if not chunk:
                    code = self.proc.wait()
                    raise RuntimeError(f"relay exited with {code}\n{self.logs()[-2000:]}")
                buffer += chunk
        return buffer.split(b"\n", 1)[0].strip()

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (graceful shutdown) and wait; returns the exit code."""
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> int:
        """SIGKILL: a crash, with no chance to shut down cleanly."""
        return self._end(signal.SIGKILL, 20.0)

    def _end(self, signum: signal.Signals, timeout: float) -> int:
        proc = self.proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(signum)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"relay ignored signal {signum.name} for {timeout}s") from None
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
        return code

    def restart(self, timeout: float = 20.0) -> RelayProcess:
        self.stop()
        return self.start(timeout)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> RelayProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()


def start_relay(
    data_dir: Path,
    *extra_args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 20.0,
) -> RelayProcess:
    """Start ``carnet-relay serve --data data_dir`` on a free port; use as a context manager."""
    return RelayProcess(data_dir, tuple(extra_args), env).start(timeout)
