"""Cursor notifications between relay processes: NOTIFY to send, one LISTEN to hear.

Every commit that grows or erases a mailbox is followed by ``NOTIFY
carnet_relay`` with the payload ``"<mailbox id hex> <latest cursor>"`` or
``"<mailbox id hex> gone"``, delivered to every listening process, the sender's
own included. The database sees ids and cursors anyway; nothing else is sent.

Appends do not NOTIFY inside their own transaction: PostgreSQL serialises the
commits of notifying transactions on one lock held through the WAL flush, which
would turn group commit into one fsync per append. An ``Announcer`` sends them
right after the commit instead, batched (all that accumulated while the
previous batch was in flight) in one transaction that need not wait for a WAL
flush. The cost: a relay process that dies between an append's commit and its
announcement leaves other processes' subscribers unaware of that append until
the mailbox's next one (their devices still see it at their next sync).
Erasures, rare, notify inside their transaction.

A notification sent while this connection was down is lost. So after each
reconnection, ``on_reconnect`` re-reads the latest cursor of every mailbox
with subscribers and publishes it: a subscriber that missed an append hears
the newer cursor then, one that missed nothing hears nothing (pushers only
send a cursor that grew).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

CHANNEL = "carnet_relay"
GONE = "gone"
# How often an idle LISTEN connection is checked: a peer that vanished without
# closing the socket (a network cut) is otherwise noticed only by TCP, much later.
PING_INTERVAL = 5.0
PING_TIMEOUT = 5.0
RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)

log = logging.getLogger(__name__)

Connect = Callable[[], Awaitable[asyncpg.Connection]]
# synchronous_commit off for this transaction only: a notification is not data.
_ANNOUNCE = f"""
    SELECT set_config('synchronous_commit', 'off', true), pg_notify('{CHANNEL}', text)
    FROM unnest($1::text[]) AS text
"""
DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def payload(mailbox_hex: str, cursor: int | None) -> str:
    return f"{mailbox_hex} {GONE if cursor is None else cursor}"


def parse(text: str) -> tuple[bytes, int | None] | None:
    """(mailbox id, latest cursor or None when gone), or None for a payload not ours."""
    mailbox_hex, _, cursor = text.partition(" ")
    try:
        mailbox_id = bytes.fromhex(mailbox_hex)
        return mailbox_id, None if cursor == GONE else int(cursor)
    except ValueError:
        return None


class Announcer:
    """Sends the latest cursors of appended mailboxes, batched, after their commits.

    It sends on the LISTEN connection when there is one (idle but for incoming
    notifications), so that announcements never queue behind requests for a
    pooled connection; else on the pool.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.listener: Listener | None = None
        self._pending: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def announce(self, mailbox_hex: str, cursor: int) -> None:
        if cursor > self._pending.get(mailbox_hex, 0):
            self._pending[mailbox_hex] = cursor
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                payloads = [payload(mailbox, cursor) for mailbox, cursor in batch.items()]
                # If the database is away, nothing is lost: every process re-reads its
                # subscribers' mailboxes once its LISTEN connection is back.
                with contextlib.suppress(DB_ERRORS):
                    if self.listener is None or not await self.listener.execute(
                        _ANNOUNCE, payloads
                    ):
                        await self._pool.execute(_ANNOUNCE, payloads)
        finally:
            self._task = None

    async def close(self) -> None:
        """Send what is pending (at shutdown, before the pool closes), if the database
        answers within a few seconds."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), PING_TIMEOUT)


class Listener:
    def __init__(
        self,
        connect: Connect,
        publish: Callable[[bytes, int | None], None],
        on_reconnect: Callable[[], Awaitable[None]],
    ) -> None:
        self._connect = connect
        self._publish = publish
        self._on_reconnect = on_reconnect
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy = asyncio.Lock()
        self.connected = False

    async def start(self) -> None:
        """Connect and LISTEN (raising if the database is unreachable), then watch."""
        await self._listen()
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _listen(self) -> None:
        conn = await self._connect()
        try:
            self._lost.clear()
            conn.add_termination_listener(lambda _conn: self._lost.set())
            await conn.add_listener(CHANNEL, self._heard)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        self.connected = True

    async def execute(self, sql: str, *args: object) -> bool:
        """Run `sql` on the LISTEN connection; False (not run) while it is down."""
        async with self._busy:  # asyncpg runs one query at a time per connection
            conn = self._conn
            if not self.connected or conn is None or conn.is_closed():
                return False
            await conn.execute(sql, *args, timeout=PING_TIMEOUT)
            return True

    def _heard(self, _conn: object, _pid: int, _channel: str, text: str) -> None:
        parsed = parse(text)
        if parsed is not None:
            self._publish(*parsed)

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), PING_INTERVAL)
            if not self._lost.is_set() and await self._alive():
                continue
            self.connected = False
            log.warning("lost the database notification connection; reconnecting")
            await self._drop()
            await self._reconnect()
            log.info("database notifications restored")

    async def _alive(self) -> bool:
        try:
            return await self.execute("SELECT 1")
        except DB_ERRORS:
            return False

    async def _reconnect(self) -> None:
        attempt = 0
        while True:
            await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
            attempt += 1
            try:
                await self._listen()
                await self._on_reconnect()
                return
            except DB_ERRORS:
                await self._drop()  # not back yet (or gone again during the re-read)

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self.connected = False
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2)
            except DB_ERRORS:
                conn.terminate()
