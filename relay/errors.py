"""HTTP errors of the relay API: a status and a one-line ``{"error", "message"}`` body."""

from __future__ import annotations

import json

from aiohttp import web

from carnet.relay.storage.base import (
    EntryConflict,
    MailboxConflict,
    QuotaExceeded,
    SeqGap,
    StorageError,
    StorageUnavailable,
    UnknownMailbox,
)

# Error codes the storage layer's refusals map to; the daemon matches "no_such_mailbox".
STORAGE_ERRORS: dict[type[StorageError], tuple[int, str]] = {
    UnknownMailbox: (404, "no_such_mailbox"),
    MailboxConflict: (409, "mailbox_exists"),
    EntryConflict: (409, "entry_conflict"),
    SeqGap: (409, "seq_gap"),
    # 413, not 507: the refusal is final for this mailbox until it shrinks (compaction,
    # erasure), and a device should not retry it as it would a busy (429/503) relay.
    QuotaExceeded: (413, "quota_exceeded"),
    StorageUnavailable: (503, "storage_unavailable"),
}


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers

    @classmethod
    def from_storage(cls, exc: StorageError) -> ApiError:
        status, code = STORAGE_ERRORS.get(type(exc), (500, "storage_error"))
        # A database restart takes seconds: say so, and devices retry instead of failing.
        headers = {"Retry-After": "1"} if status == 503 else None
        return cls(status, code, str(exc) or code, headers)

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, self.headers)


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    return ApiError(400, code, message)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    line = " ".join(message.split())  # one line, whatever the source said
    body = json.dumps({"error": code, "message": line})
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)
