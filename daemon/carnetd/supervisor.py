"""Runs carnetd's parts on one event loop: signals, config reload, systemd protocol.

- SIGTERM/SIGINT: ``STOPPING=1``, the inbox finishes the file in hand (its
  transaction), the other parts are cancelled at their next ``await`` (no store
  write spans one), then the process exits 0.
- SIGHUP: the configuration is read again (file, environment, the original
  flags); a bad one is logged and the running one kept. Only the parts whose
  settings changed are restarted.
- ``READY=1`` once the store is open and the first sync round was attempted;
  ``WATCHDOG=1`` from the loop itself, so a stalled loop gets restarted.
- A part that fails with an unexpected exception is a bug: it is logged with
  its traceback and the daemon exits 1, for systemd to restart it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from carnet.daemon.carnetd.bugs import log_bug
from carnet.daemon.carnetd.control import ControlSocket
from carnet.daemon.carnetd.inbox import Inbox
from carnet.daemon.carnetd.live import LiveSync
from carnet.daemon.carnetd.reminders import Reminders
from carnet.daemon.carnetd.status import StatusBoard
from carnet.daemon.config import Config
from carnet.daemon.device import Device
from carnet.daemon.paths import Paths
from carnet.daemon.store import Store
from carnet.protocol.errors import InvalidConfig
from carnet.service.systemd import notify, start_watchdog, stop_watchdog

log = logging.getLogger("carnetd")


def inbox_folder(config: Config, paths: Paths) -> Path:
    return Path(config.inbox).expanduser().absolute() if config.inbox else paths.inbox


class Supervisor:
    def __init__(self, device: Device, overrides: dict[str, Any]) -> None:
        self.device = device
        self.overrides = overrides  # command-line flags, which outrank a reloaded file
        self.board = StatusBoard(device.paths.daemon_status)
        self.reminders = Reminders(device.store, lambda: self.device.config, self.board)
        self.control = ControlSocket(device.paths.daemon_socket)
        self.live: LiveSync | None = None
        self.inbox: Inbox | None = None
        self._inbox_store: Store | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stop = asyncio.Event()
        self._hangup = asyncio.Event()
        self._failed = False

    # --- the parts -------------------------------------------------------------

    def _spawn(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks[name] = task
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stop.is_set():
            return
        exc = task.exception()
        if exc is not None:
            log_bug(log, task.get_name(), exc)
            self._failed = True
            self._stop.set()

    async def _halt(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _remote_change(self) -> None:
        """A sync round applied changes made elsewhere (or sealed ours)."""
        self.reminders.changed()

    def _local_change(self) -> None:
        """A CLI command committed a change, or the inbox imported a file: push it now."""
        if self.live is not None:
            self.live.request()
        self.reminders.changed()

    def _start_live(self) -> None:
        if not self.device.config.relay:
            log.warning("no relay configured; syncing is off")
            self.live = None
            return
        self.live = LiveSync(self.device, self.board, self._remote_change)
        self._spawn("sync", self.live.run())

    def _new_inbox(self, config: Config) -> Inbox:
        """An inbox for `config`, its folders created; InvalidConfig if they cannot be."""
        folder = inbox_folder(config, self.device.paths)
        if self._inbox_store is None:
            self._inbox_store = Store.open(self.device.paths.store)
        inbox = Inbox(folder, self._inbox_store, config.inbox_settle_ms / 1000, self._local_change)
        try:
            inbox.prepare()
        except OSError as exc:
            raise InvalidConfig(f"inbox {folder}: {exc.strerror}") from None
        return inbox

    def _start_inbox(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self._spawn("inbox", inbox.run())

    async def _stop_inbox(self) -> None:
        task = self._tasks.pop("inbox", None)
        if self.inbox is not None and task is not None:
            self.inbox.stop()
            await task  # it finishes the file in hand: never half a transaction

    # --- lifecycle -------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._hangup.set)
        self.board.update(state="starting", relay=self.device.config.relay)
        inbox = self._new_inbox(self.device.config)
        await self.control.open(self._local_change)
        watchdog = start_watchdog()
        self._start_inbox(inbox)
        self._spawn("reminders", self.reminders.run())
        self._spawn("reload", self._reloader())
        self._start_live()
        try:
            if self.live is not None:
                await self._until_stopped_or(self.live.first_round.wait())
            self.board.update(state="running")
            notify("READY=1", f"STATUS={self.board.summary()}")
            log.info("carnetd ready")
            await self._stop.wait()
        finally:
            notify("STOPPING=1")
            log.info("carnetd stopping")
            self.board.update(state="stopping")
            await self._stop_inbox()
            for name in list(self._tasks):
                await self._halt(name)
            await stop_watchdog(watchdog)
            self.control.close()
            if self._inbox_store is not None:
                self._inbox_store.close()
            self.board.update(state="stopped")
        return 1 if self._failed else 0

    async def _until_stopped_or(self, work: Coroutine[Any, Any, Any]) -> None:
        waiter = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (waiter, stopper):
            pending.cancel()

    async def _reloader(self) -> None:
        """Apply SIGHUPs one at a time (several in quick succession make one reload)."""
        while True:
            await self._hangup.wait()
            self._hangup.clear()
            await self._reload()

    async def _reload(self) -> None:
        old = self.device.config
        inbox = None
        try:
            config = Config.load(self.device.paths.config_file, **self.overrides)
            if (config.inbox, config.inbox_settle_ms) != (old.inbox, old.inbox_settle_ms):
                inbox = self._new_inbox(config)
        except InvalidConfig as exc:
            log.error("configuration not reloaded, keeping the running one: %s", exc)
            return
        self.device.config = config
        if config.relay != old.relay:
            await self._halt("sync")
            self.board.update(relay=config.relay, subscribed=False)
            self._start_live()
        if inbox is not None:
            await self._stop_inbox()
            self._start_inbox(inbox)
        self.reminders.changed()
        log.info("configuration reloaded")
