"""Malformed requests of every kind get a 4xx JSON refusal; none gets a 500 or hurts the relay."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from typing import Any

import pytest

from carnet.protocol import wire
from carnet.protocol.mailbox import MailboxKeys
from tests.relay.helpers import Api, Device, Reply, creation_body, new_keys

CREATE = f"{wire.API}/mailboxes"


@pytest.fixture
async def keys(api: Api) -> MailboxKeys:
    keys = new_keys()
    assert (await api.create(keys)).status == 201
    return keys


def good_entry(keys: MailboxKeys) -> dict[str, Any]:
    return wire.entry_to_json(Device(keys).next())


async def assert_healthy(api: Api) -> None:
    assert (await api.call("GET", "/healthz")).body == {"status": "ok"}


def bad_creations(keys: MailboxKeys) -> list[Any]:
    good = creation_body(keys)

    def with_(**changes: Any) -> dict[str, Any]:
        return {**good, **changes}

    return [
        None,
        [],
        "text",
        {},
        {k: v for k, v in good.items() if k != "proof"},
        with_(mailbox=123),
        with_(mailbox=keys.hex_id[:-1]),
        with_(mailbox="zz" * 32),
        with_(mailbox=" " + keys.hex_id[1:]),
        with_(write_key=None),
        with_(read_key="ab" * 33),
        with_(proof="not base64!"),
        with_(proof=base64.b64encode(b"short").decode()),
        with_(proof=["a"]),
        with_(ttl=0),
        with_(ttl=-5),
        with_(ttl=wire.MAX_TTL + 1),
        with_(ttl="60"),
        with_(ttl=True),
        with_(ttl=1.5),
        with_(ttl=10**30),
        with_(extra=1),
    ]


async def test_bad_creations(api: Api) -> None:
    keys = new_keys()
    for body in bad_creations(keys):
        reply = await api.call("POST", CREATE, body)
        assert (reply.status, reply.error) in {(400, "bad_request"), (400, "bad_json")}, body
    assert (await api.create(keys)).status == 201  # none of them created the mailbox


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"\xff\xfe{}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"ttl": ' + b"9" * 5000 + b"}",
        b"null",
        b'{"a": NaN}',
    ],
    ids=["empty", "truncated", "not-utf8", "deep", "huge-int", "null", "nan"],
)
async def test_bodies_that_are_not_json_objects(api: Api, raw: bytes) -> None:
    reply = await api.call("POST", CREATE, raw=raw)
    assert reply.status == 400


def bad_batches(keys: MailboxKeys) -> list[Any]:
    entry = good_entry(keys)

    def with_(**changes: Any) -> dict[str, Any]:
        return {"entries": [{**entry, **changes}]}

    return [
        {},
        {"entries": []},
        {"entries": {}},
        {"entries": [entry] * (wire.MAX_BATCH_ENTRIES + 1)},
        {"entries": [entry], "more": 1},
        {"entries": [None]},
        {"entries": ["x"]},
        with_(seq=0),
        with_(seq=-1),
        with_(seq="1"),
        with_(seq=True),
        with_(seq=1.0),
        with_(seq=2**63),
        with_(writer="ab"),
        with_(writer="zz" * 16),
        with_(writer="00 " * 10 + "00"),  # 32 characters, but fromhex() reads 11 bytes
        with_(writer=None),
        with_(data=""),
        with_(data="***"),
        with_(data=12),
        with_(data=base64.b64encode(b"x" * (wire.MAX_ENTRY_BYTES + 1)).decode()),
        with_(surprise=True),
    ]


async def test_bad_batches(api: Api, keys: MailboxKeys) -> None:
    path = wire.mailbox_path(keys.mailbox_id, "/entries")
    for body in bad_batches(keys):
        reply = await api.call("POST", path, body, key=keys.write_signer())
        assert reply.status == 400 and reply.error in {"bad_request", "bad_entry"}, body
    assert (await api.read(keys)).body["cursor"] == 0


@pytest.mark.parametrize(
    "query",
    [
        "?after=-1",
        "?after=abc",
        "?after=1.5",
        "?after=99999999999999999999",
        "?after=%EF%BC%91",  # a fullwidth digit, which int() would accept
        "?after=1_0",
        "?after=+1",
        "?after=",
        "?after=1&after=2",
        "?limit=0",
        "?limit=x",
    ],
)
async def test_bad_queries(api: Api, keys: MailboxKeys, query: str) -> None:
    path = wire.mailbox_path(keys.mailbox_id, "/entries") + query
    reply = await api.call("GET", path, key=keys.read_signer())
    assert (reply.status, reply.error) == (400, "bad_query")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("GET", "/v1/mailboxes", 405),
        ("PUT", "/v1/mailboxes", 405),
        ("HEAD", "/healthz", 405),
        ("PATCH", "/v1/mailboxes/" + "ab" * 32, 405),
        ("GET", "/v1/mailboxes/" + "ab" * 32 + "/elsewhere", 404),
        ("GET", "/v1/mailboxes/zz/entries", 400),
        ("GET", "/v1/mailboxes/" + "ab" * 31 + "/entries", 400),
        ("POST", "/v1/mailboxes/" + "g" * 64 + "/entries", 400),
        ("GET", "/v1/mailboxes/" + "ab" * 32 + "/entries", 404),
    ],
)
async def test_unknown_routes_methods_and_ids(
    api: Api, method: str, path: str, status: int
) -> None:
    if method == "HEAD":  # a HEAD reply has no body to check; the status must still be 4xx
        async with api.session.head(api.url + path) as resp:
            assert resp.status == status
        return
    reply = await api.call(method, path)
    assert reply.status == status


async def test_method_not_allowed_says_what_is(api: Api) -> None:
    reply = await api.call("PUT", CREATE)
    assert reply.error == "method_not_allowed" and reply.headers.get("Allow") == "POST"


async def test_oversize_body(api: Api, keys: MailboxKeys) -> None:
    path = wire.mailbox_path(keys.mailbox_id, "/entries")
    raw = b" " * (wire.MAX_BODY_BYTES + 1)
    reply = await api.call("POST", path, raw=raw, key=keys.write_signer())
    assert reply.status == 413
    reply = await api.call("POST", CREATE, raw=raw)
    assert reply.status == 413
    await assert_healthy(api)


async def test_subscribe_without_a_websocket_handshake(api: Api, keys: MailboxKeys) -> None:
    path = wire.mailbox_path(keys.mailbox_id, "/subscribe")
    reply = await api.call("GET", path, key=keys.read_signer())
    assert reply.status == 400


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rng.choice([None, True, False, 0, -1, 2**64, 1e308, "", "ab" * 16])
    if kind == 1:
        return rng.randint(-(2**70), 2**70)
    if kind == 2:
        return "".join(rng.choice("0123456789abcdef+/=é\x00") for _ in range(rng.randrange(70)))
    if kind in (3, 4):
        return base64.b64encode(rng.randbytes(rng.randrange(200))).decode()
    if kind == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["mailbox", "write_key", "read_key", "proof", "ttl", "entries", "writer", "seq", "data"]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(6))}


async def test_fuzzed_bodies(api: Api, keys: MailboxKeys) -> None:
    rng = random.Random(20260406)
    append = wire.mailbox_path(keys.mailbox_id, "/entries")
    replies: list[Reply] = []
    for _ in range(150):
        body = random_json(rng)
        if rng.random() < 0.5:
            body = {"entries": [random_json(rng) for _ in range(rng.randrange(3))]}
        raw = json.dumps(body).encode() if rng.random() < 0.9 else rng.randbytes(50)
        replies.append(await api.call("POST", append, raw=raw, key=keys.write_signer()))
        replies.append(await api.call("POST", CREATE, raw=raw))
    assert all(r.status in (400, 401) for r in replies)
    await assert_healthy(api)


async def test_http_level_garbage_leaves_the_relay_serving(api: Api) -> None:
    # Below HTTP there is no route to answer in JSON: aiohttp's own plain-text 400 it is.
    host, port = api.url.removeprefix("http://").split(":")
    for junk in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"GET /\x00 HTTP/9\r\n\r\n"):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(junk)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer == b"" or answer.split(b" ")[1] == b"400"
        writer.close()
    await assert_healthy(api)
