"""Websocket subscriptions: the latest cursor now and after each append, nothing else."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from carnet.protocol import auth, wire
from carnet.protocol.mailbox import MailboxKeys
from tests.relay.helpers import Api, Device, new_keys


@pytest.fixture
async def keys(api: Api) -> MailboxKeys:
    keys = new_keys()
    assert (await api.create(keys)).status == 201
    return keys


async def next_cursor(ws: aiohttp.ClientWebSocketResponse) -> int:
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    body = json.loads(msg.data)
    assert set(body) == {"cursor"}
    return int(body["cursor"])


async def test_cursor_now_and_after_each_append(api: Api, keys: MailboxKeys) -> None:
    device = Device(keys)
    await api.append(keys, device.batch(2))
    other = new_keys()
    await api.create(other)
    async with await api.subscribe(keys, after=0) as ws:
        assert await next_cursor(ws) == 2
        await api.append(other, Device(other).batch(1))  # another mailbox: not heard here
        await api.append(keys, [device.next()])
        assert await next_cursor(ws) == 3
        await api.append(keys, device.batch(5))
        assert await next_cursor(ws) == 8
        await ws.send_str("anything")  # ignored
        await api.append(keys, [device.next()])
        assert await next_cursor(ws) == 9


async def test_many_subscribers_all_hear_an_append(api: Api, keys: MailboxKeys) -> None:
    sockets = [await api.subscribe(keys) for _ in range(50)]
    try:
        assert {await next_cursor(ws) for ws in sockets} == {0}
        await api.append(keys, Device(keys).batch(1))
        assert {await next_cursor(ws) for ws in sockets} == {1}
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))


async def test_erasing_the_mailbox_closes_its_subscriptions(api: Api, keys: MailboxKeys) -> None:
    async with await api.subscribe(keys) as ws:
        assert await next_cursor(ws) == 0
        await api.delete(keys)
        msg = await asyncio.wait_for(ws.receive(), 5)
        # The frame's code: the client's own close_code may turn 1006 when its reply
        # races the relay closing the connection (see test_process).
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, aiohttp.WSCloseCode.GOING_AWAY)


async def test_subscribing_needs_the_read_capability(api: Api, keys: MailboxKeys) -> None:
    path = wire.mailbox_path(keys.mailbox_id, "/subscribe") + "?after=0"
    for headers in ({}, auth.sign_request(keys.write_signer(), "GET", path, b"")):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await api.session.ws_connect(api.url + path, headers=headers)
        assert refused.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as unknown:
        await api.subscribe(new_keys())
    assert unknown.value.status == 404


async def test_a_client_flooding_the_socket_is_cut_off(api: Api, keys: MailboxKeys) -> None:
    async with await api.subscribe(keys) as ws:
        assert await next_cursor(ws) == 0
        await ws.send_str("x" * 100_000)
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
