"""The relay's HTTP API (see ``carnet.protocol.wire``) over a ``Storage`` backend.

Order of checks on a mailbox request: id syntax (400), mailbox (404), signature
(401), then query and body (400). An unauthenticated client learns nothing
beyond whether a 256-bit id it already knows exists.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, web

from carnet.protocol import auth, wire
from carnet.relay import requests
from carnet.relay.errors import ApiError, error_response
from carnet.relay.logs import (
    ACCESS_LOGGER,
    SERVER_LOGGER,
    RouteAccessLogger,
    install_blindfold,
    route_template,
)
from carnet.relay.storage.base import Storage, StorageError, UnknownMailbox
from carnet.relay.subscriptions import serve_subscription

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DEFAULT_HEARTBEAT = 30.0
DEFAULT_SWEEP_INTERVAL = 60.0
_HEALTHY = json.dumps({"status": "ok"})
# aiohttp's own refusals, in the API's words.
_HTTP_ERRORS = {
    404: ("not_found", "no such route"),
    405: ("method_not_allowed", "this route does not take that method"),
    413: ("too_large", f"the body exceeds {wire.MAX_BODY_BYTES} bytes"),
}


class Relay:
    """Request handlers; one instance per application."""

    def __init__(self, storage: Storage, heartbeat: float | None = DEFAULT_HEARTBEAT) -> None:
        self.storage = storage
        self.heartbeat = heartbeat
        self.sockets: set[web.WebSocketResponse] = set()

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text=_HEALTHY, content_type="application/json")

    async def create(self, request: web.Request) -> web.Response:
        new = requests.creation(requests.json_object(await request.read()))
        if not auth.check_creation(new.write_key, new.mailbox_id, new.read_key, new.proof):
            raise ApiError(401, "bad_proof", "the proof is not a signature by the write key")
        created = await self.storage.create_mailbox(
            new.mailbox_id, new.write_key, new.read_key, new.ttl
        )
        return web.json_response({"created": created}, status=201 if created else 200)

    async def append(self, request: web.Request) -> web.Response:
        raw = await request.read()
        mailbox_id = await self._authorize(request, raw, write=True)
        batch = requests.entries(requests.json_object(raw))
        latest, appended = await self.storage.append(mailbox_id, batch)
        return web.json_response({"cursor": latest, "appended": appended})

    async def read(self, request: web.Request) -> web.Response:
        mailbox_id = await self._authorize(request, await request.read(), write=False)
        after = requests.query_int(request, "after", 0, 0, requests.MAX_INT)
        limit = requests.query_int(
            request, "limit", wire.MAX_PAGE_ENTRIES, 1, wire.MAX_PAGE_ENTRIES
        )
        page, more = await self.storage.read(mailbox_id, after, limit, wire.MAX_PAGE_BYTES)
        return web.json_response(
            {
                "entries": [
                    {
                        "cursor": row.cursor,
                        "writer": row.writer.hex(),
                        "seq": row.seq,
                        "data": base64.b64encode(row.data).decode(),
                    }
                    for row in page
                ],
                "cursor": page[-1].cursor if page else after,
                "more": more,
            }
        )

    async def subscribe(self, request: web.Request) -> web.StreamResponse:
        mailbox_id = await self._authorize(request, await request.read(), write=False)
        # `after` is checked like a read's, but the first message is the latest cursor anyway.
        requests.query_int(request, "after", 0, 0, requests.MAX_INT)
        return await serve_subscription(
            request, self.storage, mailbox_id, self.heartbeat, self.sockets
        )

    async def delete(self, request: web.Request) -> web.Response:
        mailbox_id = await self._authorize(request, await request.read(), write=True)
        if not await self.storage.delete_mailbox(mailbox_id):
            raise UnknownMailbox("no such mailbox")
        return web.json_response({"deleted": True})

    async def _authorize(self, request: web.Request, body: bytes, *, write: bool) -> bytes:
        """The mailbox id, once the request is signed by its write (or read) capability."""
        mailbox_id = requests.mailbox_id(request)
        mailbox = await self.storage.get_mailbox(mailbox_id)
        if mailbox is None:
            raise UnknownMailbox("no such mailbox")
        key = mailbox.write_key if write else mailbox.read_key
        if not signed_by(key, request, body):
            capability = "write" if write else "read"
            raise ApiError(401, "unauthorized", f"missing or invalid {capability} signature")
        return mailbox_id

    async def close_sockets(self, app: web.Application) -> None:
        """on_shutdown: close subscriptions, so their handlers end before the server waits."""
        await asyncio.gather(
            *(
                ws.close(code=WSCloseCode.GOING_AWAY, message=b"relay shutting down")
                for ws in tuple(self.sockets)
            ),
            return_exceptions=True,
        )


def signed_by(key: bytes, request: web.Request, body: bytes) -> bool:
    # raw_path is the target exactly as sent, query included: what the client signed.
    try:
        return auth.verify_request(
            key, request.method, request.raw_path, body, request.headers.get(auth.HEADER)
        )
    except OverflowError:  # a timestamp too large for a float; auth.py lets it through
        return False


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure, aiohttp's own 404/405/413 included, as a 4xx (or 503) JSON body."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except StorageError as exc:
        return ApiError.from_storage(exc).response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, message = _HTTP_ERRORS.get(exc.status, (_slug(exc.reason), exc.reason))
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, code, message, allow)
    except ConnectionError:
        raise  # the client went away: nobody to answer, nothing to log
    except Exception as exc:
        # A bug: say where, but never the message or locals, which may hold request data.
        where = traceback.extract_tb(exc.__traceback__)[-1]
        log.error(
            "internal error in %s %s: %s at %s:%s",
            request.method,
            route_template(request),
            type(exc).__name__,
            where.filename,
            where.lineno,
        )
        return error_response(500, "internal_error", "the relay failed; try again later")


def _slug(reason: str) -> str:
    return reason.lower().replace(" ", "_") or "error"


async def _sweep_forever(storage: Storage, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            swept = await storage.sweep_expired()
        except StorageError as exc:
            log.warning("sweeping expired mailboxes failed: %s", exc)
            continue
        if swept:
            log.info("erased %d expired mailboxes", swept)


def _sweeper(storage: Storage, interval: float) -> Callable[[web.Application], Any]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(_sweep_forever(storage, interval))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


def create_app(
    storage: Storage,
    *,
    heartbeat: float | None = DEFAULT_HEARTBEAT,
    sweep_interval: float = DEFAULT_SWEEP_INTERVAL,
) -> web.Application:
    """The relay application; the caller owns `storage` and closes it after the runner."""
    relay = Relay(storage, heartbeat)
    app = web.Application(middlewares=[json_errors], client_max_size=wire.MAX_BODY_BYTES)
    mailbox = f"{wire.API}/mailboxes/{{id}}"
    app.router.add_get("/healthz", relay.health, allow_head=False)
    app.router.add_post(f"{wire.API}/mailboxes", relay.create)
    app.router.add_post(f"{mailbox}/entries", relay.append)
    app.router.add_get(f"{mailbox}/entries", relay.read, allow_head=False)
    app.router.add_get(f"{mailbox}/subscribe", relay.subscribe, allow_head=False)
    app.router.add_delete(mailbox, relay.delete)
    app.on_shutdown.append(relay.close_sockets)
    app.cleanup_ctx.append(_sweeper(storage, sweep_interval))
    return app


def make_runner(app: web.Application, *, shutdown_timeout: float = 10.0) -> web.AppRunner:
    """A runner whose logs name routes, never paths or client addresses."""
    install_blindfold()
    return web.AppRunner(
        app,
        access_log_class=RouteAccessLogger,
        access_log=ACCESS_LOGGER,
        logger=SERVER_LOGGER,
        shutdown_timeout=shutdown_timeout,
    )
