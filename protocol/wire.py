"""The relay's HTTP API: paths, limits and JSON shapes shared by relay and devices.

All bodies are JSON. Ids and keys are lowercase hex, entry data is standard
base64. Every error is ``{"error": CODE, "message": TEXT}`` with a 4xx status,
or 503 while the relay's database is unavailable; 429 and 503 carry Retry-After.

    POST   /v1/mailboxes                         create (proof of the write key in body)
    POST   /v1/mailboxes/{id}/entries            append a batch       [write capability]
    GET    /v1/mailboxes/{id}/entries?after=&limit=   read a page     [read capability]
    GET    /v1/mailboxes/{id}/subscribe?after=   websocket of cursors [read capability]
    DELETE /v1/mailboxes/{id}                    erase               [write capability]
    POST   /v1/mailboxes/{id}/compact            drop entries below {"before": N} [write]
    GET    /healthz
    GET    /metrics                              Prometheus text, aggregates only

The limits below are the protocol's; a relay may be configured lower (413).
"""

from __future__ import annotations

import base64
from typing import Any

from carnet.protocol.envelope import NONCE_BYTES, Entry
from carnet.protocol.mailbox import WRITER_TAG_BYTES
from carnet.protocol.padding import CEILING

API = "/v1"
MAX_PADDED = CEILING
MAX_ENTRY_BYTES = 1 + NONCE_BYTES + MAX_PADDED + 16
MAX_BATCH_ENTRIES = 64
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_PAGE_ENTRIES = 500
MAX_PAGE_BYTES = 4 * 1024 * 1024
MAX_TTL = 10 * 365 * 24 * 3600
MAILBOX_ID_BYTES = 32
KEY_BYTES = 32


def mailbox_path(mailbox_id: bytes | str, suffix: str = "") -> str:
    hex_id = mailbox_id if isinstance(mailbox_id, str) else mailbox_id.hex()
    return f"{API}/mailboxes/{hex_id}{suffix}"


def entry_to_json(entry: Entry) -> dict[str, Any]:
    return {
        "writer": entry.writer.hex(),
        "seq": entry.seq,
        "data": base64.b64encode(entry.data).decode(),
    }


def entry_from_json(obj: Any) -> Entry:
    """Parse one entry object; raises ValueError with a short reason if it is malformed."""
    if not isinstance(obj, dict) or set(obj) - {"writer", "seq", "data", "cursor"}:
        raise ValueError("an entry is an object with writer, seq and data")
    writer, seq, data = obj.get("writer"), obj.get("seq"), obj.get("data")
    if not isinstance(writer, str) or len(writer) != 2 * WRITER_TAG_BYTES:
        raise ValueError(f"writer must be {2 * WRITER_TAG_BYTES} hex digits")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq < 2**63:
        raise ValueError("seq must be a positive integer")
    if not isinstance(data, str) or len(data) > 4 * (MAX_ENTRY_BYTES // 3 + 1):
        raise ValueError(f"data must be base64 of at most {MAX_ENTRY_BYTES} bytes")
    try:
        raw = base64.b64decode(data.encode(), validate=True)
        tag = bytes.fromhex(writer)
    except ValueError as exc:
        raise ValueError("writer must be hex and data base64") from exc
    if len(tag) != WRITER_TAG_BYTES:  # bytes.fromhex skips spaces
        raise ValueError(f"writer must be {2 * WRITER_TAG_BYTES} hex digits")
    if not raw or len(raw) > MAX_ENTRY_BYTES:
        raise ValueError(f"data must be 1 to {MAX_ENTRY_BYTES} bytes")
    return Entry(writer=tag, seq=seq, data=raw)
