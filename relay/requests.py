"""Strict parsing of what clients send: every defect becomes a one-line 400, never a 500."""

from __future__ import annotations

import base64
import binascii
import json
import string
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from carnet.protocol import wire
from carnet.protocol.envelope import Entry
from carnet.protocol.mailbox import WRITER_TAG_BYTES
from carnet.relay.errors import ApiError, bad_request
from carnet.relay.limits import Limits

MAX_INT = 2**63 - 1  # SQLite's INTEGER, and what a client can reasonably send
_HEX = frozenset(string.hexdigits)
_CREATE_KEYS = frozenset({"mailbox", "write_key", "read_key", "proof", "ttl"})
PROOF_BYTES = 64


@dataclass(frozen=True, slots=True)
class Creation:
    mailbox_id: bytes
    write_key: bytes
    read_key: bytes
    proof: bytes
    ttl: int | None


def hex_bytes(value: Any, size: int, name: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.issuperset(value):
        raise bad_request(f"{name} must be {2 * size} hex digits")
    return bytes.fromhex(value)


def mailbox_id(request: web.Request) -> bytes:
    return hex_bytes(request.match_info["id"], wire.MAILBOX_ID_BYTES, "the mailbox id")


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """A decimal query parameter in low..high; `high` also caps larger values (a page size)."""
    values = request.query.getall(name, [])
    if not values:
        return default
    text = values[0]
    # str.isdigit() alone admits non-ASCII digits, which int() would then accept.
    if len(values) > 1 or not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise bad_request(f"{name} must be one decimal integer", "bad_query")
    value = int(text)
    if value < low:
        raise bad_request(f"{name} must be at least {low}", "bad_query")
    return min(value, high)


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, huge ints, deep nesting
        raise bad_request("the body is not valid JSON", "bad_json") from None
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object", "bad_json")
    return body


def creation(body: dict[str, Any]) -> Creation:
    unknown = set(body) - _CREATE_KEYS
    if unknown:
        raise bad_request(f"unknown field {sorted(unknown)[0]!r}")
    proof = body.get("proof")
    try:
        raw_proof = base64.b64decode(proof, validate=True) if isinstance(proof, str) else b""
    except binascii.Error:
        raw_proof = b""
    if len(raw_proof) != PROOF_BYTES:
        raise bad_request(f"proof must be base64 of a {PROOF_BYTES}-byte signature")
    ttl = body.get("ttl")
    if ttl is not None and (
        not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= wire.MAX_TTL
    ):
        raise bad_request(f"ttl must be null or 1 to {wire.MAX_TTL} seconds")
    return Creation(
        mailbox_id=hex_bytes(body.get("mailbox"), wire.MAILBOX_ID_BYTES, "mailbox"),
        write_key=hex_bytes(body.get("write_key"), wire.KEY_BYTES, "write_key"),
        read_key=hex_bytes(body.get("read_key"), wire.KEY_BYTES, "read_key"),
        proof=raw_proof,
        ttl=ttl,
    )


def entries(body: dict[str, Any], limits: Limits) -> list[Entry]:
    """The batch of an append: beyond the protocol's limits a 400, beyond this relay's 413."""
    items = body.get("entries")
    if set(body) != {"entries"} or not isinstance(items, list):
        raise bad_request('the body must be {"entries": [...]}')
    if not 1 <= len(items) <= wire.MAX_BATCH_ENTRIES:
        raise bad_request(f"a batch holds 1 to {wire.MAX_BATCH_ENTRIES} entries")
    if len(items) > limits.max_batch_entries:
        raise ApiError(
            413, "batch_too_large", f"this relay takes at most {limits.max_batch_entries} entries"
        )
    parsed = []
    for index, item in enumerate(items):
        try:
            entry = wire.entry_from_json(item)
        except ValueError as exc:
            raise bad_request(f"entry {index}: {exc}", "bad_entry") from None
        # bytes.fromhex() skips spaces, so a 32-character writer can hold fewer bytes.
        if len(entry.writer) != WRITER_TAG_BYTES:
            raise bad_request(
                f"entry {index}: writer must be {WRITER_TAG_BYTES} bytes", "bad_entry"
            )
        if len(entry.data) > limits.max_entry_bytes:
            raise ApiError(
                413,
                "entry_too_large",
                f"entry {index}: this relay takes at most {limits.max_entry_bytes} bytes of data",
            )
        parsed.append(entry)
    return parsed


def compaction(body: dict[str, Any]) -> int:
    """The cursor of ``{"before": N}``: entries below it are to be dropped."""
    before = body.get("before")
    if (
        set(body) != {"before"}
        or not isinstance(before, int)
        or isinstance(before, bool)
        or not 1 <= before <= MAX_INT
    ):
        raise bad_request('the body must be {"before": a cursor of at least 1}')
    return before
