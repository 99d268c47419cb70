"""HTTP client of the relay API (see ``carnet.protocol.wire``), with capabilities.

Every request is signed with the mailbox's read or write key; transport
failures become RelayUnreachable and 4xx answers RelayRefused, each one line.
A busy relay (429, or 503 while its database is away) is waited for as its
Retry-After says, a couple of times and a few seconds at most; after that the
request fails with RelayBusy, a RelayUnreachable, so the caller's backoff applies.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
from nacl.signing import SigningKey

from carnet.protocol import wire
from carnet.protocol.auth import sign_creation, sign_request
from carnet.protocol.envelope import Entry
from carnet.protocol.errors import RelayRefused, RelayUnreachable
from carnet.protocol.mailbox import MailboxKeys

TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10)
BUSY = frozenset({429, 503})
BUSY_RETRIES = 2
BUSY_MAX_WAIT = 5.0  # seconds; a longer Retry-After is left to the caller's backoff


@dataclass(frozen=True)
class Page:
    entries: list[tuple[int, Entry]]
    cursor: int
    more: bool


class MailboxGone(RelayRefused):
    """The relay has no such mailbox (never created, expired or erased):"""


class FeedBehind(RelayRefused):
    """The relay lacks earlier entries of this device's feed (it lost data):"""


class MailboxBehind(RelayRefused):
    """The relay holds less of a mailbox than this device has read (restored from an
    older backup):"""


class RelayBusy(RelayUnreachable):
    """The relay is busy (rate limited, or its database is unavailable); retry later:"""

    def __init__(self, detail: str | None = None, retry_after: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (delta-seconds form; 1 when absent or a date)."""
    try:
        return min(max(float(value or 1), 0.0), 3600.0)
    except ValueError:
        return 1.0


class RelayClient:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RelayClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._session

    async def _call(
        self, method: str, path_qs: str, key: SigningKey | None, body: Any = None
    ) -> dict[str, Any]:
        raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        for attempt in range(BUSY_RETRIES + 1):
            # Signed anew each time: the signature covers the time of the request.
            headers = {"Content-Type": "application/json"} if body is not None else {}
            if key is not None:
                headers.update(sign_request(key, method, path_qs, raw))
            try:
                async with self.session.request(
                    method, self.url + path_qs, data=raw or None, headers=headers
                ) as resp:
                    text = await resp.text()
                    status = resp.status
                    wait = retry_after(resp.headers.get("Retry-After"))
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise RelayUnreachable(f"{self.url} ({exc.__class__.__name__})") from None
            if status not in BUSY:
                break
            if attempt == BUSY_RETRIES or wait > BUSY_MAX_WAIT:
                raise RelayBusy(f"{self.url} ({status}, retry in {wait:g} s)", wait)
            await asyncio.sleep(wait)
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):  # a relay (or a proxy) answering something else
            answer = {}
        if status == 404 and answer.get("error") == "no_such_mailbox":
            raise MailboxGone(answer.get("message", ""))
        if status == 409 and answer.get("error") == "seq_gap":
            raise FeedBehind(answer.get("message", ""))
        if status >= 400:
            message = answer.get("message")
            raise RelayRefused(f"{status} {message or text[:200]!r}")
        return answer

    async def health(self) -> bool:
        try:
            return (await self._call("GET", "/healthz", None)).get("status") == "ok"
        except (RelayUnreachable, RelayRefused):
            return False

    async def create(
        self, keys: MailboxKeys, ttl: int | None = None, read_key: bytes | None = None
    ) -> bool:
        """Create the mailbox; `read_key` (its read capability's public half) lets a
        holder of the write capability alone create it, e.g. a contact's intro mailbox."""
        write = keys.write_signer()
        read_key = read_key or bytes(keys.read_signer().verify_key)
        body = {
            "mailbox": keys.hex_id,
            "write_key": bytes(write.verify_key).hex(),
            "read_key": read_key.hex(),
            "proof": base64.b64encode(sign_creation(write, keys.mailbox_id, read_key)).decode(),
            "ttl": ttl,
        }
        return bool((await self._call("POST", f"{wire.API}/mailboxes", None, body))["created"])

    async def append(self, keys: MailboxKeys, entries: list[Entry]) -> int:
        body = {"entries": [wire.entry_to_json(e) for e in entries]}
        path = wire.mailbox_path(keys.mailbox_id, "/entries")
        return int((await self._call("POST", path, keys.write_signer(), body))["cursor"])

    async def read(self, keys: MailboxKeys, after: int, limit: int | None = None) -> Page:
        query = f"?after={after}" + (f"&limit={limit}" if limit else "")
        path = wire.mailbox_path(keys.mailbox_id, "/entries") + query
        answer = await self._call("GET", path, keys.read_signer())
        try:
            entries = [(int(e["cursor"]), wire.entry_from_json(e)) for e in answer["entries"]]
            return Page(entries, int(answer["cursor"]), bool(answer["more"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise RelayRefused(f"malformed page from relay ({exc})") from None

    async def delete(self, keys: MailboxKeys) -> None:
        await self._call("DELETE", wire.mailbox_path(keys.mailbox_id), keys.write_signer())

    async def compact(self, keys: MailboxKeys, before: int) -> int:
        """Have the relay drop the entries below cursor `before`; returns how many it dropped."""
        path = wire.mailbox_path(keys.mailbox_id, "/compact")
        answer = await self._call("POST", path, keys.write_signer(), {"before": before})
        return int(answer.get("compacted", 0))

    async def subscribe(self, keys: MailboxKeys, after: int) -> AsyncIterator[int]:
        """Yield the mailbox's latest cursor now and after every append, until closed."""
        path = wire.mailbox_path(keys.mailbox_id, "/subscribe") + f"?after={after}"
        headers = sign_request(keys.read_signer(), "GET", path, b"")
        try:
            async with self.session.ws_connect(
                self.url + path,
                headers=headers,
                heartbeat=30,
                timeout=aiohttp.ClientWSTimeout(ws_close=5),
            ) as ws:
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    yield int(json.loads(msg.data)["cursor"])
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError, KeyError) as exc:
            raise RelayUnreachable(f"{self.url} ({exc.__class__.__name__})") from None
