"""Live sync: follow the relay's websocket, push local changes as they are committed.

Two tasks share one wake-up flag:

- the **subscribers** hold a websocket on the vault mailbox and on each sharing
  mailbox others write to (notes, a practitioner's introduction mailbox and
  incoming shares; the set is refreshed after every round). The relay sends a
  mailbox's latest cursor on connect and after every append; a cursor beyond
  ours (and every (re)connection, which may follow changes made offline) asks
  for a round. When the relay is unreachable each reconnects with jittered
  exponential backoff.
- the **round runner** waits for the flag, then runs ``sync_vault`` (seal,
  push, pull, under the cross-process sync lock). It is leading-edge debounced:
  a request after a quiet spell syncs at once; rounds start at most once per
  ``push_debounce_ms``, and requests arriving sooner, or while a round runs,
  are coalesced into the next one. A failed round is retried with backoff, or
  sooner when something else asks.

Nothing polls: between events both tasks sleep on a socket or an event. Every
store write is one transaction that holds no ``await``, so cancelling either
task (shutdown, reload) never leaves a write half done; the store's cursors
make the next start resume exactly where this one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
from collections.abc import Callable

from carnet.daemon.carnetd import memory
from carnet.daemon.carnetd.backoff import Backoff
from carnet.daemon.carnetd.status import StatusBoard
from carnet.daemon.device import Device
from carnet.daemon.records import now_iso
from carnet.daemon.sharing.rounds import watched_mailboxes
from carnet.daemon.sync.engine import sync_vault
from carnet.daemon.sync.pull import read_cursor
from carnet.daemon.sync.relay_client import RelayClient
from carnet.protocol.errors import AttackDetected, CarnetError, RelayError, RelayUnreachable
from carnet.protocol.mailbox import MailboxKeys

log = logging.getLogger("carnetd.sync")

# Relay messages may quote a mailbox id; ids never go to the log or the status file.
_HEX_ID = re.compile(r"[0-9a-fA-F]{16,}")


def safe_reason(exc: CarnetError) -> str:
    return _HEX_ID.sub("…", str(exc))


class LiveSync:
    def __init__(
        self,
        device: Device,
        board: StatusBoard,
        on_change: Callable[[], None],
    ) -> None:
        self.device = device
        self.board = board
        self.on_change = on_change
        self.first_round = asyncio.Event()
        self._wake = asyncio.Event()
        self._round_done = asyncio.Event()
        self._last_round_start = float("-inf")
        self._offline = False

    def request(self) -> None:
        """Ask for a sync round soon (coalesced with other requests)."""
        self._wake.set()

    async def run(self) -> None:
        """Sync until cancelled; a config reload cancels this and starts a new one."""
        async with RelayClient(self.device.config.relay) as relay:
            self.request()  # the first round, at once
            rounds = asyncio.create_task(self._rounds(relay), name="sync-rounds")
            try:
                await self.first_round.wait()
                await asyncio.gather(rounds, self._subscribe(relay))
            finally:
                rounds.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await rounds

    async def _rounds(self, relay: RelayClient) -> None:
        loop = asyncio.get_running_loop()
        backoff = Backoff()
        retry: float | None = None
        while True:
            if retry is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), retry)
            debounce = self.device.config.push_debounce_ms / 1000
            wait = self._last_round_start + debounce - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)  # requests meanwhile join this round
            self._wake.clear()
            self._last_round_start = loop.time()
            ok = await self._round(relay)
            self.first_round.set()
            self._round_done.set()
            if ok is None:
                retry = None  # refused: retrying would only refuse again; wait for news
            elif ok:
                backoff.reset()
                retry = None
            else:
                retry = backoff.next()

    async def _round(self, relay: RelayClient) -> bool | None:
        """One sync round: True if it worked, False to retry, None if the relay was refused."""
        attempt = now_iso()
        try:
            report = await sync_vault(self.device, relay)
        except AttackDetected as exc:
            # The alert is in the store (`carnet status` shows it); nothing was applied.
            log.error("sync refused: %s", type(exc).__name__)
            self.board.update(
                relay_reachable=True,
                last_sync_attempt=attempt,
                last_sync_result="refused",
                last_error=safe_reason(exc),
            )
            return None
        except (CarnetError, sqlite3.OperationalError) as exc:
            if isinstance(exc, RelayError):
                self._went_offline(exc)
            else:
                # A busy store, or e.g. a sealed key file without its passphrase:
                # retried with backoff, so the daemon stays up while it is fixed.
                log.warning("sync failed (%s); will retry", type(exc).__name__)
            self.board.update(
                relay_reachable=not self._offline,
                last_sync_attempt=attempt,
                last_sync_result="error",
                last_error=safe_reason(exc) if isinstance(exc, CarnetError) else "store busy",
            )
            return False
        if self._offline:
            self._offline = False
            log.info("relay reachable again")
        if report.sealed_ops or report.applied_ops:
            log.info(
                "synced: %d changes pushed, %d pulled",
                report.sealed_ops,
                report.applied_ops,
            )
            self.on_change()
            memory.after_bulk(report.sealed_ops + report.applied_ops)
        self.board.update(
            relay_reachable=True,
            last_sync_attempt=attempt,
            last_sync_result="ok",
            last_error=None,
        )
        return True

    def _went_offline(self, exc: RelayError) -> None:
        unreachable = isinstance(exc, RelayUnreachable)
        if unreachable and not self._offline:
            log.warning("relay unreachable; working offline, retrying with backoff")
        elif not unreachable:
            log.warning("sync failed: %s", safe_reason(exc))
        self._offline = unreachable

    async def _subscribe(self, relay: RelayClient) -> None:
        """One watcher per followed mailbox; the set is refreshed after every round."""
        vault = self.device.unlock().vault_mailbox
        watchers: dict[bytes, asyncio.Task[None]] = {}
        try:
            while True:
                wanted = {k.mailbox_id: k for k in [vault, *watched_mailboxes(self.device)]}
                for gone in set(watchers) - set(wanted):
                    watchers.pop(gone).cancel()
                for mailbox_id, keys in wanted.items():
                    if mailbox_id not in watchers:
                        watchers[mailbox_id] = asyncio.create_task(
                            self._watch(relay, keys, primary=keys is vault)
                        )
                self._round_done.clear()
                await self._round_done.wait()
        finally:
            for task in watchers.values():
                task.cancel()
            await asyncio.gather(*watchers.values(), return_exceptions=True)

    async def _watch(self, relay: RelayClient, keys: MailboxKeys, primary: bool) -> None:
        backoff = Backoff()
        while True:
            connected = False
            try:
                async for cursor in relay.subscribe(keys, read_cursor(self.device.store, keys)):
                    if not connected:
                        connected = True
                        backoff.reset()
                        if primary:
                            self.board.update(subscribed=True)
                        self.request()  # catch up on whatever happened while away
                    elif cursor > read_cursor(self.device.store, keys):
                        self.request()
            except RelayError:
                pass  # the round runner reports and logs the relay's state
            if connected and primary:
                self.board.update(subscribed=False)
            await asyncio.sleep(backoff.next())
