"""Run the relay until SIGTERM or SIGINT, then stop gracefully.

Shutdown order: stop accepting connections, close subscriptions, let requests
in flight finish (their writes commit), then close the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from carnet.protocol.errors import CarnetError, InvalidConfig
from carnet.relay.config import RelayConfig
from carnet.relay.server import create_app, make_runner
from carnet.relay.storage.base import Storage
from carnet.relay.storage.postgres import PostgresStorage
from carnet.relay.storage.sqlite import SqliteStorage
from carnet.service import systemd

log = logging.getLogger(__name__)

LISTENING = "carnet-relay listening on {url}"


class CannotListen(CarnetError):
    """Cannot listen on the address:"""


def announce(line: str) -> None:
    """The one line on stdout that tests and scripts wait for."""
    with contextlib.suppress(BrokenPipeError):
        print(line, flush=True)


def url_of(sockname: tuple[str, int] | tuple[str, int, int, int]) -> str:
    host, port = sockname[0], sockname[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    return stop


def _ignore_stop_signals() -> None:
    """From the first signal to the exit, a repeated one (an impatient operator, a test
    helper) must not cut the shutdown short; systemd's SIGKILL after TimeoutStopSec=
    remains the way to force it. The loop would restore the default action on closing."""
    loop = asyncio.get_running_loop()
    for signum in _STOP_SIGNALS:
        loop.remove_signal_handler(signum)
        signal.signal(signum, signal.SIG_IGN)


async def open_storage(config: RelayConfig, *, read_only: bool = False) -> Storage:
    """The configured store: PostgreSQL when `database` is set, else SQLite in `data`.

    `read_only` is for ``carnet-relay stats`` next to running relays: no
    migration, no LISTEN, no data directory lock.
    """
    if config.database:
        return await PostgresStorage.open(
            config.database,
            pool_size=1 if read_only else config.database_pool,
            wait=0.0 if read_only else config.database_wait,
            listen=not read_only,
            migrate=not read_only,
        )
    assert config.data is not None  # resolve() insists on one of the two
    if read_only:
        return SqliteStorage.open_readonly(config.data)
    try:
        return SqliteStorage.open(config.data)
    except OSError as exc:
        raise InvalidConfig(f"cannot use data directory {config.data}: {exc.strerror}") from None


async def serve(config: RelayConfig, ready: Callable[[str], None] = announce) -> None:
    """Serve `config` until SIGTERM or SIGINT; `ready` gets the listening line."""
    storage = await open_storage(config)
    app = create_app(
        storage,
        heartbeat=config.heartbeat,
        sweep_interval=config.sweep_interval,
        limits=config.limits,
        metrics_token=config.metrics_token,
    )
    runner = make_runner(app, shutdown_timeout=config.shutdown_timeout)
    watchdog = None
    stop = _stop_on_signals()
    try:
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port, backlog=1024)
        try:
            await site.start()
        except OSError as exc:
            raise CannotListen(f"{config.host}:{config.port} ({exc.strerror})") from None
        url = url_of(runner.addresses[0])
        ready(LISTENING.format(url=url))
        systemd.notify("READY=1", f"STATUS=listening on {url}")
        watchdog = systemd.start_watchdog()
        log.info("listening on %s", url)
        await stop.wait()
        log.info("shutting down")
        systemd.notify("STOPPING=1", "STATUS=shutting down")
    finally:
        _ignore_stop_signals()
        await runner.cleanup()
        await systemd.stop_watchdog(watchdog)
        await storage.close()
