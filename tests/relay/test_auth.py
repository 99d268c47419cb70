"""Capabilities: every mailbox request must be signed, fresh, by the right key, unaltered."""

from __future__ import annotations

import base64
import json
import time

import pytest
from nacl.signing import SigningKey

from carnet.protocol import auth, wire
from carnet.protocol.mailbox import MailboxKeys
from tests.relay.helpers import Api, Device, creation_body, entries_body, new_keys


@pytest.fixture
async def keys(api: Api) -> MailboxKeys:
    keys = new_keys()
    assert (await api.create(keys)).status == 201
    return keys


def entries_path(keys: MailboxKeys, query: str = "") -> str:
    return wire.mailbox_path(keys.mailbox_id, "/entries") + query


async def assert_refused(reply_coro: object) -> None:
    reply = await reply_coro  # type: ignore[misc]
    assert (reply.status, reply.error) == (401, "unauthorized"), reply


async def test_the_right_key_is_needed_for_each_capability(api: Api, keys: MailboxKeys) -> None:
    stranger = SigningKey.generate()
    batch = Device(keys).batch(1)
    await assert_refused(api.append(keys, batch, key=keys.read_signer()))  # read key writing
    await assert_refused(api.append(keys, batch, key=stranger))
    await assert_refused(api.delete(keys, key=keys.read_signer()))
    await assert_refused(api.read(keys, key=keys.write_signer()))  # capabilities are separate
    await assert_refused(api.read(keys, key=stranger))
    await assert_refused(api.call("GET", entries_path(keys, "?after=0")))  # unsigned
    assert (await api.read(keys)).body["cursor"] == 0  # nothing was written


async def test_stale_or_future_signatures_are_refused(api: Api, keys: MailboxKeys) -> None:
    for skew in (-auth.MAX_SKEW - 30, auth.MAX_SKEW + 30):
        await assert_refused(
            api.call("GET", entries_path(keys), key=keys.read_signer(), now=time.time() + skew)
        )


async def test_signature_binds_body_path_query_and_method(api: Api, keys: MailboxKeys) -> None:
    body = entries_body(Device(keys).batch(1))
    signed = json.dumps(body).encode()
    tampered = json.dumps(entries_body(Device(keys).batch(1))).encode()
    write = keys.write_signer()
    await assert_refused(
        api.call("POST", entries_path(keys), raw=tampered, key=write, sign_body=signed)
    )
    other = new_keys()
    await assert_refused(
        api.call("GET", entries_path(keys), key=keys.read_signer(), sign_path=entries_path(other))
    )
    await assert_refused(
        api.call(
            "GET",
            entries_path(keys, "?after=5"),
            key=keys.read_signer(),
            sign_path=entries_path(keys, "?after=0"),
        )
    )
    header = auth.sign_request(write, "POST", wire.mailbox_path(keys.mailbox_id), b"")
    await assert_refused(api.call("DELETE", wire.mailbox_path(keys.mailbox_id), headers=header))


async def test_garbage_auth_headers_are_refused(api: Api, keys: MailboxKeys) -> None:
    for header in ("", "x", "1.2", f"{int(time.time())}.!!!", "9" * 500 + ".AAAA", "é.é"):
        await assert_refused(api.call("GET", entries_path(keys), headers={auth.HEADER: header}))


async def test_creation_needs_a_proof_by_the_write_key(api: Api) -> None:
    keys = new_keys()
    body = creation_body(keys)
    forged = SigningKey.generate().sign(b"carnet/create-mailbox/v1" + keys.mailbox_id).signature
    body["proof"] = base64.b64encode(forged).decode()
    reply = await api.call("POST", f"{wire.API}/mailboxes", body)
    assert (reply.status, reply.error) == (401, "bad_proof")
    # A proof for another id (a replayed creation) does not carry over either.
    replayed = {**creation_body(new_keys()), "mailbox": keys.hex_id}
    reply = await api.call("POST", f"{wire.API}/mailboxes", replayed)
    assert reply.status == 401
