"""Operating limits: rate limits by address and connection, sizes, quotas; compaction's API."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from unittest import mock

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from carnet.protocol import wire
from carnet.relay.limits import Limits, RateLimiter, client_address
from carnet.relay.server import create_app
from carnet.relay.storage.base import Quota, Storage
from tests.relay import devices
from tests.relay.conftest import serving
from tests.relay.helpers import Api, Device, FakeClock, new_keys, raw_entry

LOCAL = (ipaddress.ip_network("127.0.0.0/8"),)


def test_token_bucket_refills_at_its_rate() -> None:
    clock = FakeClock(0)
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # every key has its own bucket
    clock.advance(0.5)
    assert limiter.take("a") == 0.0
    clock.advance(100)
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # refills up to the burst only


def test_idle_buckets_are_forgotten_past_the_tracking_limit() -> None:
    clock = FakeClock(0)
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    with mock.patch("carnet.relay.limits.MAX_TRACKED", 10):
        for n in range(10):
            limiter.take(n)
        clock.advance(2)
        limiter.take("new")
    assert len(limiter) == 1


def request_from(peer: str, forwarded: str | None = None) -> aiohttp.web.Request:
    transport = mock.Mock()
    transport.get_extra_info.return_value = (peer, 50000)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return make_mocked_request("GET", "/", headers=headers, transport=transport)


def test_forwarded_addresses_count_only_from_trusted_proxies() -> None:
    assert client_address(request_from("198.51.100.7", "10.0.0.1"), LOCAL) == "198.51.100.7"
    assert client_address(request_from("127.0.0.1", "10.0.0.1"), ()) == "127.0.0.1"
    assert client_address(request_from("127.0.0.1"), LOCAL) == "127.0.0.1"
    assert client_address(request_from("127.0.0.1", "10.0.0.1"), LOCAL) == "10.0.0.1"
    # What the client wrote itself is left of what the proxy appended: never believed.
    chain = "6.6.6.6, 10.0.0.1, 127.0.0.2"
    assert client_address(request_from("127.0.0.1", chain), LOCAL) == "10.0.0.1"


async def test_a_flooding_client_gets_429_while_a_device_keeps_syncing(
    storage: Storage, tmp_path: Path
) -> None:
    limits = Limits(rate_per_address=5, burst_per_address=15, trusted_proxies=LOCAL)
    async with serving(create_app(storage, limits=limits)) as url:
        patient = devices.new_device(tmp_path / "phone", url)
        laptop = devices.new_device(tmp_path / "laptop", url, like=patient)
        keys = new_keys()
        flood_headers = {"X-Forwarded-For": "192.0.2.66"}  # a documentation address
        async with aiohttp.ClientSession(headers=flood_headers) as session:
            flooder = Api(session, url)
            await flooder.create(keys)
            replies = []

            async def flood() -> None:
                feed = Device(keys)
                for _ in range(300):
                    replies.append(await flooder.append(keys, [feed.next()]))

            flooding = asyncio.ensure_future(flood())
            for n in range(3):
                devices.add(patient, n)
                await devices.sync(patient, url)
                await asyncio.sleep(0.05)
            await flooding
        await devices.sync(laptop, url)
        assert devices.practitioners(laptop) == {"Dr 0", "Dr 1", "Dr 2"}
    refused = [r for r in replies if r.status == 429]
    assert len(refused) > 250
    assert {r.error for r in refused} == {"rate_limited"}
    assert all(1 <= int(r.headers["Retry-After"]) <= 60 for r in refused)


async def test_one_connection_is_limited_on_its_own(api: Api, storage: Storage) -> None:
    limits = Limits(rate_per_connection=0.5, burst_per_connection=3)
    async with serving(create_app(storage, limits=limits)) as url:
        one = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=one) as session:
            statuses = [(await Api(session, url).call("GET", "/nowhere")).status for _ in range(5)]
        assert statuses == [404, 404, 404, 429, 429]
        async with aiohttp.ClientSession() as fresh:
            assert (await Api(fresh, url).call("GET", "/nowhere")).status == 404
            health = await Api(fresh, url).call("GET", "/healthz")  # never limited
            assert health.status == 200


async def test_sizes_and_quotas_are_413(storage: Storage) -> None:
    limits = Limits(max_entry_bytes=2000, max_batch_entries=2, quota=Quota(max_entries=3))
    async with serving(create_app(storage, limits=limits)) as url, aiohttp.ClientSession() as s:
        api, keys, writer = Api(s, url), new_keys(), b"w" * 16
        await api.create(keys)
        reply = await api.append(keys, [raw_entry(writer, n, 10) for n in (1, 2, 3)])
        assert (reply.status, reply.error) == (413, "batch_too_large")
        reply = await api.append(keys, [raw_entry(writer, 1, 2001)])
        assert (reply.status, reply.error) == (413, "entry_too_large")
        reply = await api.append(keys, [raw_entry(writer, 1, 2000), raw_entry(writer, 2, 10)])
        assert reply.status == 200
        await api.append(keys, [raw_entry(writer, 3, 10)])
        reply = await api.append(keys, [raw_entry(writer, 4, 10)])
        assert (reply.status, reply.error) == (413, "quota_exceeded")
        # Beyond the protocol's own limits it stays a 400, whatever the relay allows.
        too_many = [raw_entry(writer, n, 10) for n in range(1, wire.MAX_BATCH_ENTRIES + 2)]
        assert (await api.append(keys, too_many)).status == 400


async def test_compaction_needs_the_write_capability(api: Api) -> None:
    keys = new_keys()
    await api.create(keys)
    await api.append(keys, Device(keys).batch(4))
    path = wire.mailbox_path(keys.mailbox_id, "/compact")
    refused = await api.call("POST", path, {"before": 3}, key=keys.read_signer())
    assert refused.status == 401
    for bad in ({}, {"before": 0}, {"before": "3"}, {"before": 3, "x": 1}):
        reply = await api.call("POST", path, bad, key=keys.write_signer())
        assert (reply.status, reply.error) == (400, "bad_request"), bad
    done = await api.call("POST", path, {"before": 3}, key=keys.write_signer())
    assert (done.status, done.body) == (200, {"compacted": 2})
    page = await api.read(keys)
    assert [e["cursor"] for e in page.body["entries"]] == [3, 4]
