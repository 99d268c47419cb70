"""The relay API over HTTP, on a real server: mailboxes, appends, pages, erasure, expiry."""

from __future__ import annotations

import asyncio
import base64

from carnet.protocol import auth, wire
from carnet.protocol.mailbox import MailboxKeys
from carnet.relay.storage.base import Stats, Storage
from tests.relay.helpers import Api, Device, FakeClock, creation_body, new_keys, stored


async def created(api: Api) -> MailboxKeys:
    keys = new_keys()
    reply = await api.create(keys)
    assert (reply.status, reply.body) == (201, {"created": True})
    return keys


async def test_health(api: Api) -> None:
    reply = await api.call("GET", "/healthz")
    assert (reply.status, reply.body) == (200, {"status": "ok"})


async def test_create_is_idempotent_and_first_keys_win(api: Api) -> None:
    keys = await created(api)
    again = await api.create(keys)
    assert (again.status, again.body) == (200, {"created": False})
    # The same id with other keys, proven for those keys: refused, the first creator keeps it.
    other = new_keys()
    body = {**creation_body(other), "mailbox": keys.hex_id}
    read_key = bytes(other.read_signer().verify_key)
    proof = auth.sign_creation(other.write_signer(), keys.mailbox_id, read_key)
    body["proof"] = base64.b64encode(proof).decode()
    reply = await api.call("POST", f"{wire.API}/mailboxes", body)
    assert (reply.status, reply.error) == (409, "mailbox_exists")


async def test_append_then_read_returns_the_exact_bytes(api: Api) -> None:
    keys = await created(api)
    alice, bob = Device(keys), Device(keys)
    sent = [alice.next(), alice.next(), bob.next()]
    reply = await api.append(keys, sent)
    assert (reply.status, reply.body) == (200, {"cursor": 3, "appended": 3})
    page = await api.read(keys)
    assert page.status == 200 and page.body["cursor"] == 3 and page.body["more"] is False
    assert [wire.entry_from_json(e) for e in page.body["entries"]] == sent
    assert stored(page) == [
        (1, sent[0].writer.hex(), 1),
        (2, sent[1].writer.hex(), 2),
        (3, sent[2].writer.hex(), 1),
    ]


async def test_paging_with_after_and_limit(api: Api) -> None:
    keys = await created(api)
    device = Device(keys)
    await api.append(keys, device.batch(wire.MAX_BATCH_ENTRIES))
    await api.append(keys, device.batch(6))
    page = await api.read(keys, after=0, limit=50)
    assert [c for c, _, _ in stored(page)] == list(range(1, 51))
    assert (page.body["cursor"], page.body["more"]) == (50, True)
    page = await api.read(keys, after=50)
    assert [c for c, _, _ in stored(page)] == list(range(51, 71))
    assert (page.body["cursor"], page.body["more"]) == (70, False)
    empty = await api.read(keys, after=70)
    assert empty.body == {"entries": [], "cursor": 70, "more": False}
    # A reader further on than the mailbox goes (the relay was restored from an
    # older backup) learns where it ends.
    beyond = await api.read(keys, after=90)
    assert beyond.body == {"entries": [], "cursor": 70, "more": False}
    capped = await api.read(keys, limit=10**6)  # a larger limit is capped, not refused
    assert capped.status == 200 and len(capped.body["entries"]) == 70


async def test_retried_append_is_idempotent(api: Api) -> None:
    keys = await created(api)
    device = Device(keys)
    batch = device.batch(3)
    assert (await api.append(keys, batch)).body == {"cursor": 3, "appended": 3}
    assert (await api.append(keys, batch)).body == {"cursor": 3, "appended": 0}
    more = device.next()
    assert (await api.append(keys, [*batch[1:], more])).body == {"cursor": 4, "appended": 1}


async def test_conflicting_and_out_of_order_entries_are_refused_whole(api: Api) -> None:
    keys = await created(api)
    device = Device(keys)
    await api.append(keys, [device.next()])
    fork = Device(keys, writer=device.writer)  # same device, another history at seq 1
    reply = await api.append(keys, [Device(keys).next(), fork.next()])
    assert (reply.status, reply.error) == (409, "entry_conflict")
    device.next()  # seq 2 is skipped
    reply = await api.append(keys, [device.next()])
    assert (reply.status, reply.error) == (409, "seq_gap")
    assert (await api.read(keys)).body["cursor"] == 1  # nothing of either batch was stored


async def test_delete_erases_everything(api: Api) -> None:
    keys = await created(api)
    await api.append(keys, Device(keys).batch(3))
    reply = await api.delete(keys)
    assert (reply.status, reply.body) == (200, {"deleted": True})
    for reply in (
        await api.read(keys),
        await api.append(keys, Device(keys).batch(1)),
        await api.delete(keys),
    ):
        assert (reply.status, reply.error) == (404, "no_such_mailbox")


async def test_ttl_expires_at_once_and_the_sweeper_erases(
    api: Api, clock: FakeClock, storage: Storage
) -> None:
    keys = new_keys()
    assert (await api.create(keys, ttl=60)).status == 201
    await api.append(keys, Device(keys).batch(2))
    swept = asyncio.Event()

    def listener(cursor: int | None) -> None:
        if cursor is None:
            swept.set()

    storage.subscribe(keys.mailbox_id, listener)
    clock.advance(59)
    assert (await api.read(keys)).status == 200
    clock.advance(1)
    reply = await api.read(keys)
    assert (reply.status, reply.error) == (404, "no_such_mailbox")
    await asyncio.wait_for(swept.wait(), 5)  # the fixture's sweeper runs every 50 ms
    assert await storage.stats() == Stats(0, 0, 0)
