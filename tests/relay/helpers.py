"""Building blocks of the relay tests: sealed entries, a signing API client, a fake clock."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from nacl.signing import SigningKey

from carnet.protocol import auth, wire
from carnet.protocol.envelope import GENESIS, Entry, Writer, certify_device, seal
from carnet.protocol.mailbox import MailboxKeys


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def new_keys() -> MailboxKeys:
    return MailboxKeys.from_secret(os.urandom(32))


@dataclass
class Device:
    """One writer's feed in one mailbox, producing the real sealed entries a device would."""

    keys: MailboxKeys
    writer: Writer = field(default_factory=lambda: new_writer(SigningKey.generate()))
    seq: int = 0
    head: bytes = GENESIS

    def next(self, body: dict[str, Any] | None = None) -> Entry:
        self.seq += 1
        entry = seal(self.keys, self.writer, self.seq, self.head, body or {"n": self.seq})
        self.head = entry.hash
        return entry

    def batch(self, count: int) -> list[Entry]:
        return [self.next() for _ in range(count)]


def new_writer(identity: SigningKey) -> Writer:
    device = SigningKey.generate()
    return Writer(device, certify_device(identity, bytes(device.verify_key)))


def raw_entry(writer: bytes, seq: int, size: int = 100) -> Entry:
    """An entry as storage sees it: opaque bytes (no sealing cost in storage tests)."""
    return Entry(writer=writer, seq=seq, data=os.urandom(size))


def creation_body(keys: MailboxKeys, ttl: int | None = None) -> dict[str, Any]:
    write = keys.write_signer()
    read_key = bytes(keys.read_signer().verify_key)
    proof = auth.sign_creation(write, keys.mailbox_id, read_key)
    return {
        "mailbox": keys.hex_id,
        "write_key": bytes(write.verify_key).hex(),
        "read_key": read_key.hex(),
        "proof": base64.b64encode(proof).decode(),
        "ttl": ttl,
    }


def entries_body(entries: list[Entry]) -> dict[str, Any]:
    return {"entries": [wire.entry_to_json(e) for e in entries]}


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def error(self) -> str | None:
        return self.body.get("error") if isinstance(self.body, dict) else None


class Api:
    """A test client of the relay API; every reply is checked to be JSON, errors one line."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url.rstrip("/")

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        key: SigningKey | None = None,
        headers: dict[str, str] | None = None,
        sign_path: str | None = None,
        sign_body: bytes | None = None,
        now: float | None = None,
    ) -> Reply:
        data = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
        sent = dict(headers or {})
        if key is not None:
            signed = data if sign_body is None else sign_body
            sent.update(auth.sign_request(key, method, sign_path or path, signed, now=now))
        async with self.session.request(
            method, self.url + path, data=data or None, headers=sent
        ) as resp:
            text = await resp.text()
            reply = Reply(resp.status, None, dict(resp.headers))
            assert resp.content_type == "application/json", (resp.status, text[:200])
        reply.body = json.loads(text)
        if reply.status >= 400:
            assert_error_shape(reply)
        return reply

    async def create(self, keys: MailboxKeys, ttl: int | None = None) -> Reply:
        return await self.call("POST", f"{wire.API}/mailboxes", creation_body(keys, ttl))

    async def append(
        self, keys: MailboxKeys, entries: list[Entry], key: SigningKey | None = None
    ) -> Reply:
        return await self.call(
            "POST",
            wire.mailbox_path(keys.mailbox_id, "/entries"),
            entries_body(entries),
            key=key or keys.write_signer(),
        )

    async def read(
        self,
        keys: MailboxKeys,
        after: int = 0,
        limit: int | None = None,
        key: SigningKey | None = None,
    ) -> Reply:
        query = f"?after={after}" + ("" if limit is None else f"&limit={limit}")
        path = wire.mailbox_path(keys.mailbox_id, "/entries") + query
        return await self.call("GET", path, key=key or keys.read_signer())

    async def delete(self, keys: MailboxKeys, key: SigningKey | None = None) -> Reply:
        path = wire.mailbox_path(keys.mailbox_id)
        return await self.call("DELETE", path, key=key or keys.write_signer())

    async def subscribe(self, keys: MailboxKeys, after: int = 0) -> aiohttp.ClientWebSocketResponse:
        path = wire.mailbox_path(keys.mailbox_id, "/subscribe") + f"?after={after}"
        headers = auth.sign_request(keys.read_signer(), "GET", path, b"")
        return await self.session.ws_connect(self.url + path, headers=headers)


def assert_error_shape(reply: Reply) -> None:
    """A refusal is a 4xx (or 503) JSON object with a code and a one-line message."""
    assert 400 <= reply.status < 500 or reply.status == 503, reply
    assert isinstance(reply.body, dict) and set(reply.body) == {"error", "message"}, reply
    assert isinstance(reply.body["error"], str) and reply.body["error"], reply
    message = reply.body["message"]
    assert isinstance(message, str) and message and "\n" not in message, reply


def stored(page: Reply) -> list[tuple[int, str, int]]:
    """(cursor, writer, seq) of a page's entries."""
    return [(e["cursor"], e["writer"], e["seq"]) for e in page.body["entries"]]
