from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon_process.harness import Daemon, init_device, join_device
from tests.support.relay_process import RelayProcess, start_relay

StartDaemon = Callable[..., Daemon]


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    with start_relay(tmp_path / "relay") as process:
        yield process


@pytest.fixture
def pair(tmp_path: Path, relay: RelayProcess) -> tuple[Path, Path]:
    """Two devices of one patient: A created, B joined with an invitation code."""
    first = init_device(tmp_path / "a", relay.url)
    return first, join_device(first, tmp_path / "b", relay.url)


@pytest.fixture
def daemon() -> Iterator[StartDaemon]:
    """Start carnetd over a device folder; every daemon is killed at the end of the test."""
    started: list[Daemon] = []

    def start(
        home: Path, env: dict[str, str] | None = None, *args: str, ready: bool = True
    ) -> Daemon:
        process = Daemon(home, env, *args)
        started.append(process)
        return process.start(ready=ready)

    yield start
    for process in started:
        process.close()
