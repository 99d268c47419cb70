"""Websocket subscriptions: push a mailbox's latest cursor, never its entries.

An idle subscription is its handler waiting on the socket plus one callback
registered with the storage's hub: no task, timer or future of its own besides
aiohttp's heartbeat. A push runs as a short task that coalesces a burst of
appends into one message of the newest cursor, so a slow client never queues
more than one.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import WSCloseCode, web

from carnet.relay.storage.base import Storage

# Clients never need to send anything; this bounds what a misbehaving one can make us buffer.
MAX_CLIENT_MESSAGE = 1024


class CursorPusher:
    """The storage listener of one websocket: sends ``{"cursor": n}`` when n grows."""

    __slots__ = ("_gone", "_latest", "_sent", "_task", "_ws")

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws
        self._latest = self._sent = -1
        self._gone = False
        self._task: asyncio.Task[None] | None = None

    def __call__(self, cursor: int | None) -> None:
        if cursor is None:
            self._gone = True
        elif cursor > self._latest:
            self._latest = cursor
        else:
            return
        self.start()

    def start(self) -> None:
        """Push what is pending, once the websocket handshake is done."""
        if self._task is None and self._ws.prepared:
            self._task = asyncio.get_running_loop().create_task(self._push())

    async def _push(self) -> None:
        try:
            # Appends during a send raise _latest; the loop then sends only the newest.
            while self._sent < self._latest and not self._gone and not self._ws.closed:
                self._sent = self._latest
                await self._ws.send_str(json.dumps({"cursor": self._sent}))
            if self._gone and not self._ws.closed:
                await self._ws.close(code=WSCloseCode.GOING_AWAY, message=b"mailbox closed")
        except (ConnectionError, RuntimeError):
            pass  # the client went away mid-send; its handler cleans up
        finally:
            self._task = None

    async def drain(self) -> None:
        """Let a push in progress finish, so the handler does not outlive it."""
        if self._task is not None:
            await asyncio.shield(self._task)


async def serve_subscription(
    request: web.Request,
    storage: Storage,
    mailbox_id: bytes,
    heartbeat: float | None,
    sockets: set[web.WebSocketResponse],
) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=heartbeat, max_msg_size=MAX_CLIENT_MESSAGE)
    pusher = CursorPusher(ws)
    # Subscribe before reading the cursor, so an append in between cannot be missed;
    # read it before the handshake, so an unknown mailbox is still a plain 404.
    unsubscribe = storage.subscribe(mailbox_id, pusher)
    try:
        pusher(await storage.latest_cursor(mailbox_id))
        await ws.prepare(request)
        sockets.add(ws)
        pusher.start()
        async for _ in ws:
            pass  # anything a client sends is ignored; the loop ends when it closes
    finally:
        unsubscribe()
        sockets.discard(ws)
        await pusher.drain()
    return ws
