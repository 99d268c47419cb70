"""The relay's HTTP API (see ``carnet.protocol.wire``) over a ``Storage`` backend.

Order of checks on a mailbox request: rate limits (429), id syntax (400),
mailbox (404), signature (401), then query and body (400, or 413 past this
relay's configured sizes). An unauthenticated client learns nothing beyond
whether a 256-bit id it already knows exists.

Middlewares, outermost first: metrics (so they count every answer, refusals
included), JSON errors, rate limits (before any signature check or query).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, web

from carnet.protocol import auth, wire
from carnet.relay import requests
from carnet.relay.errors import ApiError, error_response
from carnet.relay.keycache import KeyCache
from carnet.relay.limits import Limits, RateLimiter, client_address, retry_after
from carnet.relay.logs import (
    ACCESS_LOGGER,
    SERVER_LOGGER,
    RouteAccessLogger,
    install_blindfold,
    route_template,
)
from carnet.relay.metrics import CONTENT_TYPE, Metrics
from carnet.relay.storage.base import Storage, StorageError, UnknownMailbox
from carnet.relay.subscriptions import serve_subscription

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
RELAY: web.AppKey[Relay] = web.AppKey("relay")

DEFAULT_HEARTBEAT = 30.0
DEFAULT_SWEEP_INTERVAL = 60.0
_HEALTHY = json.dumps({"status": "ok"})
# Operators' probes: never rate limited, so monitoring sees a flooded relay as it is.
_UNLIMITED = frozenset({"/healthz", "/metrics"})
# aiohttp's own refusals, in the API's words.
_HTTP_ERRORS = {
    404: ("not_found", "no such route"),
    405: ("method_not_allowed", "this route does not take that method"),
    413: ("too_large", "the body exceeds this relay's limit"),
}


class Relay:
    """Request handlers; one instance per application (``app[RELAY]``)."""

    def __init__(
        self,
        storage: Storage,
        heartbeat: float | None = DEFAULT_HEARTBEAT,
        limits: Limits | None = None,
        metrics_token: str | None = None,
    ) -> None:
        self.storage = storage
        self.keys = KeyCache(storage)
        self.heartbeat = heartbeat
        self.limits = limits or Limits()
        self.metrics = Metrics()
        self.metrics_token = metrics_token
        self.sockets: set[web.WebSocketResponse] = set()

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text=_HEALTHY, content_type="application/json")

    async def scrape(self, request: web.Request) -> web.Response:
        if self.metrics_token is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, f"Bearer {self.metrics_token}".encode()):
                raise ApiError(
                    401, "unauthorized", "missing or wrong bearer token",
                    {"WWW-Authenticate": "Bearer"},
                )  # fmt: skip
        text = self.metrics.render(await self.storage.stats(), len(self.sockets))
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

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
        batch = requests.entries(requests.json_object(raw), self.limits)
        latest, appended = await self.storage.append(mailbox_id, batch)
        return web.json_response({"cursor": latest, "appended": appended})

    async def read(self, request: web.Request) -> web.Response:
        mailbox_id = await self._authorize(request, await request.read(), write=False)
        after = requests.query_int(request, "after", 0, 0, requests.MAX_INT)
        limit = requests.query_int(
            request, "limit", wire.MAX_PAGE_ENTRIES, 1, wire.MAX_PAGE_ENTRIES
        )
        page, more = await self.storage.read(mailbox_id, after, limit, wire.MAX_PAGE_BYTES)
        # An empty page says where the mailbox ends if that is before `after`: a
        # device that read further than this relay holds (restored from an older
        # backup) learns it, and sends its copy again.
        end = page[-1].cursor if page else min(after, await self.storage.latest_cursor(mailbox_id))
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
                "cursor": end,
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
        self.keys.forget(mailbox_id)
        if not await self.storage.delete_mailbox(mailbox_id):
            raise UnknownMailbox("no such mailbox")
        return web.json_response({"deleted": True})

    async def compact(self, request: web.Request) -> web.Response:
        raw = await request.read()
        mailbox_id = await self._authorize(request, raw, write=True)
        before = requests.compaction(requests.json_object(raw))
        return web.json_response({"compacted": await self.storage.compact(mailbox_id, before)})

    async def _authorize(self, request: web.Request, body: bytes, *, write: bool) -> bytes:
        """The mailbox id, once the request is signed by its write (or read) capability."""
        mailbox_id = requests.mailbox_id(request)
        mailbox = await self.keys.get(mailbox_id)
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


def observing(metrics: Metrics) -> Middleware:
    """Count every answer by route template and status, and time all but websockets."""

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500  # what the client sees of an exception escaping json_errors
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            seconds = None if status == 101 else time.perf_counter() - started
            metrics.observe(request.method, route_template(request), status, seconds)

    return observe


def rate_limiting(limits: Limits) -> Middleware:
    """429 with Retry-After once a connection or a client address exceeds its rate."""
    per_connection = (
        RateLimiter(limits.rate_per_connection, limits.burst_per_connection, weak=True)
        if limits.rate_per_connection
        else None
    )
    per_address = (
        RateLimiter(limits.rate_per_address, limits.burst_per_address)
        if limits.rate_per_address
        else None
    )

    @web.middleware
    async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in _UNLIMITED:
            wait = 0.0
            if per_connection is not None and request.transport is not None:
                wait = per_connection.take(request.transport)
            if not wait and per_address is not None:
                wait = per_address.take(client_address(request, limits.trusted_proxies))
            if wait:
                raise ApiError(
                    429, "rate_limited", "too many requests; retry later",
                    {"Retry-After": retry_after(wait)},
                )  # fmt: skip
        return await handler(request)

    return limit


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
    limits: Limits | None = None,
    metrics_token: str | None = None,
) -> web.Application:
    """The relay application; the caller owns `storage` and closes it after the runner."""
    limits = limits or Limits()
    storage.quota = limits.quota
    relay = Relay(storage, heartbeat, limits, metrics_token)
    middlewares = [observing(relay.metrics), json_errors, rate_limiting(limits)]
    app = web.Application(middlewares=middlewares, client_max_size=limits.max_body_bytes)
    app[RELAY] = relay
    mailbox = f"{wire.API}/mailboxes/{{id}}"
    app.router.add_get("/healthz", relay.health, allow_head=False)
    app.router.add_get("/metrics", relay.scrape, allow_head=False)
    app.router.add_post(f"{wire.API}/mailboxes", relay.create)
    app.router.add_post(f"{mailbox}/entries", relay.append)
    app.router.add_get(f"{mailbox}/entries", relay.read, allow_head=False)
    app.router.add_get(f"{mailbox}/subscribe", relay.subscribe, allow_head=False)
    app.router.add_delete(mailbox, relay.delete)
    app.router.add_post(f"{mailbox}/compact", relay.compact)
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
