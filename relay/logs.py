"""Logging that never ties a mailbox or its contents to a client.

The relay logs a request as method, route *template*, status and duration:
never the path (it holds the mailbox id), the query, a header, a body or the
client's address. aiohttp's own loggers do name the client address and, for
malformed requests, echo the request line, so their arguments and tracebacks
are masked before any handler sees them.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

ACCESS_LOGGER = logging.getLogger("carnet.relay.access")
SERVER_LOGGER = logging.getLogger("carnet.relay.http")
_LIBRARY_LOGGERS = ("aiohttp.server", "aiohttp.web", "aiohttp.websocket", SERVER_LOGGER.name)
_CLIENT_FAULT = "Error handling request"
_PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[-#0 +]*(?:\d+|\*)?(?:\.\d+)?[a-zA-Z%]")


def route_template(request: web.BaseRequest) -> str:
    """``/v1/mailboxes/{id}/entries``: which route, never which mailbox."""
    try:
        resource = request.match_info.route.resource  # type: ignore[attr-defined]
    except (AttributeError, AssertionError):  # an unparsable request is never routed
        return "(no route)"
    return resource.canonical if resource is not None else "(no route)"


class RouteAccessLogger(AbstractAccessLogger):
    """``GET /v1/mailboxes/{id}/entries 200 1.2ms``: the route template, never the path."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = route_template(request)
        self.logger.info("%s %s %d %.1fms", request.method, route, response.status, time * 1000)

    @property
    def enabled(self) -> bool:
        # aiohttp skips timing and the call entirely when this is False.
        return self.logger.isEnabledFor(logging.INFO)


class Blindfold(logging.Filter):
    """Replace a record's arguments by "…" and its traceback by the exception's type."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(_CLIENT_FAULT) and record.levelno > logging.INFO:
            # A malformed request is the client's fault (or a scanner's), not an error here.
            record.levelno, record.levelname = logging.INFO, "INFO"
        message = _PLACEHOLDER.sub("…", str(record.msg)) if record.args else str(record.msg)
        if record.exc_info and record.exc_info[0] is not None:
            message += f" ({record.exc_info[0].__name__})"
        record.msg, record.args = message, ()
        record.exc_info = record.exc_text = None
        return True


def install_blindfold() -> None:
    """Mask aiohttp's records (idempotent); called before the relay serves anything."""
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, Blindfold) for f in logger.filters):
            logger.addFilter(Blindfold())
