"""Adding a second device of the same identity through a one-time code.

The inviting device derives a throwaway *join mailbox* from a fresh 160-bit
secret, creates it on the relay with a short TTL, and leaves there one entry,
sealed and signed like any other, carrying the vault key. The code is that
secret, written in base32. The new device derives the same mailbox, opens the
entry, checks that its writer is certified by the identity the vault key
implies, then erases the mailbox so the code cannot be used twice. The relay
sees a mailbox created, written once, read and deleted; never the secret.
"""

from __future__ import annotations

import base64
import binascii

from nacl.utils import random

from carnet.daemon.config import Config
from carnet.daemon.device import Device
from carnet.daemon.keys import Secrets
from carnet.daemon.paths import Paths
from carnet.daemon.sync.engine import sync_vault
from carnet.daemon.sync.relay_client import MailboxGone, RelayClient
from carnet.protocol.envelope import GENESIS, check_certificate, open_entry, seal
from carnet.protocol.errors import AlreadyInitialised, JoinError, TamperedEntry, UsageError
from carnet.protocol.kdf import derive
from carnet.protocol.mailbox import MailboxKeys

SECRET_BYTES = 20
TTL_SECONDS = 15 * 60


def _keys(secret: bytes) -> MailboxKeys:
    return MailboxKeys.from_secret(derive(secret, "join-mailbox"))


def format_code(secret: bytes) -> str:
    text = base64.b32encode(secret).decode().lower()
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def parse_code(code: str) -> bytes:
    text = "".join(ch for ch in code.upper() if ch.isalnum())
    try:
        secret = base64.b32decode(text)
    except (binascii.Error, ValueError):
        secret = b""
    if len(secret) != SECRET_BYTES:
        raise UsageError("that is not a carnet join code; copy the whole last line it printed")
    return secret


async def invite(device: Device, relay: RelayClient) -> str:
    """Leave the vault key for a new device on the relay; returns the one-time code.

    Syncs first, so that the new device finds everything this one has.
    """
    await sync_vault(device, relay)
    secrets = device.unlock()
    secret = random(SECRET_BYTES)
    keys = _keys(secret)
    await relay.create(keys, ttl=TTL_SECONDS)
    body = {
        "vault": secrets.vault_key.hex(),
        "relay": device.config.relay,
        "name": device.config.name,
        "role": device.config.role,
    }
    await relay.append(keys, [seal(keys, secrets.writer, 1, GENESIS, body)])
    return format_code(secret)


async def accept(
    paths: Paths, relay: RelayClient, code: str, config: Config, passphrase: bytes | None
) -> Device:
    """Join the identity behind `code` as a new device of it."""
    if paths.keys.exists():
        raise AlreadyInitialised(f"({paths.keys})")
    keys = _keys(parse_code(code))
    try:
        page = await relay.read(keys, 0)
    except MailboxGone:
        raise JoinError("the code is unknown, already used or expired; ask for a new one") from None
    if len(page.entries) != 1:
        raise JoinError("the relay holds no invitation for this code; ask for a new one")
    seen: dict[str, bytes] = {}

    def note_writer(device: bytes, cert: bytes) -> bool:
        seen.update(device=device, cert=cert)
        return True

    try:
        opened = open_entry(keys, page.entries[0][1], note_writer)
        vault_key = bytes.fromhex(str(opened.body["vault"]))
        if len(vault_key) != 32:
            raise ValueError("the vault key is not 32 bytes")
        secrets = Secrets(random(32), vault_key)
    except (TamperedEntry, KeyError, ValueError):
        raise JoinError("the invitation failed verification; ask for a new code") from None
    if not check_certificate(secrets.identity.verify_key, seen["device"], seen["cert"]):
        raise JoinError("the invitation was not written by a device of that identity")
    await relay.delete(keys)
    config.name = config.name or str(opened.body.get("name", ""))
    config.role = str(opened.body.get("role") or config.role)
    return Device.create(paths, config, passphrase, secrets)
