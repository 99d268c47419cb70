"""Pairing in person: two identities pin each other's card with a short one-time code.

``carnet pair`` shows a code such as ``7-ocean-lantern``: a *nameplate* (1 to
9999) and two words (16 bits). The whole code is the SPAKE2 password
(``spake2.SPAKE2_Symmetric``, identity ``carnet/pair/v1``). The nameplate alone
chooses a throwaway *pairing mailbox*, ``derive(PAIR_ROOT, "pair-mailbox",
nameplate)``: never the words, or whoever lists mailbox ids (the relay) could
test words offline. The mailbox is created with a 10-minute TTL and deleted at
the end. Messages are ordinary entries written under a throwaway signing key,
so no device key or certificate is shown to whoever guesses a nameplate::

    A (shows the code)  -> {"pake": A's SPAKE2 message}
    B (types the code)  -> {"pake": B's message, "confirm": MAC(B's message), "card": E(B's card)}
    A checks B's MAC    -> {"confirm": MAC(A's message), "card": E(A's card)}
    B checks A's MAC, pins A -> {"ack": MAC("ack")}
    A checks the ack, pins B, deletes the mailbox

MAC is keyed BLAKE2b under ``derive(K, "pair-confirm")``, compared in constant
time; E is XChaCha20-Poly1305 under ``derive(K, "pair-card")`` with the
sender's side as associated data. Both sides show the same confirmation words,
``derive(K, "pair-words")``. A wrong code, a third party or a relay altering or
swapping messages leaves the sides with different keys K: the first check
fails, that side posts ``{"abort": reason}`` and stops, and neither pins.
A guesser gets one online try per code, as the shower aborts at the first bad
confirmation. Only the ack is unconfirmed: if it is lost, B has pinned A (whose
keys it verified) and A reports a failure; pairing again fixes it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nacl.encoding import RawEncoder
from nacl.exceptions import CryptoError
from nacl.hash import blake2b
from nacl.secret import Aead
from nacl.signing import SigningKey
from nacl.utils import random
from spake2 import SPAKE2_Symmetric
from spake2.spake2 import SPAKEError

from carnet.daemon.device import Device
from carnet.daemon.sharing import contacts
from carnet.daemon.sharing.cards import Card, intro_mailbox, own_card
from carnet.daemon.sharing.contacts import Contact
from carnet.daemon.sharing.wordlist import FIRST, SECOND
from carnet.daemon.sync.relay_client import MailboxGone, RelayClient
from carnet.protocol.envelope import GENESIS, Entry, Writer, open_entry, seal
from carnet.protocol.errors import (
    InvalidCard,
    PairingFailed,
    RelayError,
    TamperedEntry,
    UsageError,
)
from carnet.protocol.kdf import derive, digest
from carnet.protocol.mailbox import MailboxKeys

TTL = 600
NAMEPLATES = 9999
PAIR_ROOT = digest(b"carnet/pair/mailbox/v1")  # public: the mailbox hides nothing
_SPAKE_ID = b"carnet/pair/v1"
_SPAKE_MESSAGE = 33
_CARD_AD = b"carnet/pair-card/v1/"
_POLL_FIRST, _POLL_MAX = 0.1, 0.5


def _uniform(bound: int) -> int:
    """A uniform integer in [0, bound), from libsodium's generator (rejection sampling)."""
    limit = 65536 - 65536 % bound
    while (value := int.from_bytes(random(2), "big")) >= limit:
        pass
    return value % bound


@dataclass(frozen=True)
class Code:
    nameplate: int
    first: str
    second: str

    def __str__(self) -> str:
        return f"{self.nameplate}-{self.first}-{self.second}"

    @classmethod
    def draw(cls) -> Code:
        return cls(1 + _uniform(NAMEPLATES), FIRST[_uniform(256)], SECOND[_uniform(256)])

    @classmethod
    def parse(cls, text: str) -> Code:
        parts = text.strip().lower().split("-")
        if (
            len(parts) != 3
            or not parts[0].isdigit()
            or not 1 <= int(parts[0]) <= NAMEPLATES
            or parts[1] not in FIRST
            or parts[2] not in SECOND
        ):
            raise UsageError(f"{text!r} is not a pairing code like 7-ocean-lantern")
        return cls(int(parts[0]), parts[1], parts[2])

    @property
    def mailbox(self) -> MailboxKeys:
        return mailbox(self.nameplate)


def mailbox(nameplate: int) -> MailboxKeys:
    """The pairing mailbox of a nameplate: anyone can derive it, which is why it is public."""
    return MailboxKeys.from_secret(derive(PAIR_ROOT, "pair-mailbox", str(nameplate).encode()))


@dataclass(frozen=True)
class Paired:
    contact: Contact
    confirmation: str


def _mac(key: bytes, message: bytes) -> str:
    return blake2b(
        message, key=derive(key, "pair-confirm"), digest_size=32, encoder=RawEncoder
    ).hex()


def _matches(sent: Any, expected: str) -> bool:
    """Constant-time check of a MAC received as hex."""
    return isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected.encode())


def confirmation(key: bytes) -> str:
    """The words both sides show, from the shared key."""
    raw = derive(key, "pair-words", size=3)
    return f"{FIRST[raw[0]]}-{SECOND[raw[1]]}-{FIRST[raw[2]]}"


def _seal_card(key: bytes, card: Card, side: bytes) -> str:
    sealed = Aead(derive(key, "pair-card")).encrypt(card.encode().encode(), _CARD_AD + side)
    return base64.b64encode(sealed).decode()


def _open_card(key: bytes, body: dict[str, Any], side: bytes) -> Card:
    try:
        raw = Aead(derive(key, "pair-card")).decrypt(
            base64.b64decode(str(body["card"])), _CARD_AD + side
        )
        return Card.decode(raw.decode())
    except (CryptoError, KeyError, ValueError, InvalidCard):
        raise PairingFailed("the other side's card does not open; a message was altered") from None


def _finish(spake: SPAKE2_Symmetric, body: dict[str, Any]) -> tuple[bytes, bytes]:
    """(their SPAKE2 message, shared key K); PairingFailed if the message is malformed."""
    try:
        theirs = bytes.fromhex(str(body["pake"]))
        if len(theirs) != _SPAKE_MESSAGE:
            raise ValueError("wrong length")
        return theirs, spake.finish(theirs)
    except (KeyError, ValueError, SPAKEError):
        raise PairingFailed("a pairing message is malformed; a message was altered") from None


class _Channel:
    """One side's messages in the pairing mailbox, under a throwaway signing key."""

    def __init__(self, relay: RelayClient, keys: MailboxKeys, timeout: float) -> None:
        self.relay, self.keys = relay, keys
        self.writer = Writer(SigningKey.generate(), b"")
        self.own = keys.writer_tag(self.writer.public_key)
        self.peer: bytes | None = None
        self.seq, self.prev, self.cursor = 0, GENESIS, 0
        self.deadline = asyncio.get_running_loop().time() + timeout

    async def send(self, body: dict[str, Any]) -> None:
        entry = seal(self.keys, self.writer, self.seq + 1, self.prev, body)
        try:
            await self.relay.append(self.keys, [entry])
        except MailboxGone:
            raise PairingFailed("the other side ended pairing, or the code expired") from None
        self.seq, self.prev = entry.seq, entry.hash

    async def abort(self, reason: str) -> None:
        with contextlib.suppress(RelayError, PairingFailed):
            await self.send({"abort": reason})

    async def receive(self) -> dict[str, Any]:
        """The other side's next message, waiting for it until the deadline."""
        loop, delay = asyncio.get_running_loop(), _POLL_FIRST
        while True:
            try:
                page = await self.relay.read(self.keys, self.cursor)
            except MailboxGone:
                if self.peer is None:
                    raise PairingFailed("the code is unknown, used or expired") from None
                raise PairingFailed(
                    "the other side ended pairing: the codes differ (a typo?), or someone "
                    "interfered"
                ) from None
            for cursor, entry in page.entries:
                self.cursor = cursor
                if entry.writer != self.own:
                    return self._accept(entry)
            self.cursor = max(self.cursor, page.cursor)
            if loop.time() > self.deadline:
                raise PairingFailed("the other side did not answer in time")
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    def _accept(self, entry: Entry) -> dict[str, Any]:
        if self.peer is not None and entry.writer != self.peer:
            raise PairingFailed("a third party wrote into the pairing; start again")
        try:
            body = open_entry(self.keys, entry, lambda device, cert: True).body
        except TamperedEntry:
            raise PairingFailed("a pairing message was altered") from None
        self.peer = entry.writer
        if "abort" in body:
            raise PairingFailed(f"the other side stopped: {str(body['abort'])[:200]}")
        return body


def _check_alias_free(device: Device, alias: str) -> str:
    alias = contacts.check_alias(alias)
    if contacts.find(device.store, alias) is not None:
        raise UsageError(f"{alias!r} is already pinned; choose another alias")
    return alias


async def _prepare(device: Device, relay: RelayClient) -> Card:
    """This side's card; a practitioner makes sure its introduction mailbox exists."""
    secrets = device.unlock()
    if device.config.role == "practitioner":
        await relay.create(intro_mailbox(secrets))
    return own_card(secrets, device.config)


async def show(
    device: Device,
    relay: RelayClient,
    alias: str,
    announce: Callable[[str], None],
    timeout: float = TTL,
) -> Paired:
    """Create a code, `announce` it, and pair with whoever types it (side A)."""
    alias = _check_alias_free(device, alias)
    card = await _prepare(device, relay)
    for _ in range(8):
        code = Code.draw()
        if await relay.create(code.mailbox, ttl=TTL):
            break  # a nameplate nobody else is using
    else:
        raise PairingFailed("the relay has no free pairing slot; try again in a minute")
    announce(str(code))
    channel = _Channel(relay, code.mailbox, min(timeout, TTL))
    try:
        spake = SPAKE2_Symmetric(str(code).encode(), idSymmetric=_SPAKE_ID)
        mine = spake.start()
        await channel.send({"pake": mine.hex()})
        answer = await channel.receive()
        theirs, key = _finish(spake, answer)
        if not _matches(answer.get("confirm"), _mac(key, theirs)):
            await channel.abort("the codes differ")
            raise PairingFailed("the codes differ (a typo?), or someone interfered")
        peer = _open_card(key, answer, b"B")
        await channel.send({"confirm": _mac(key, mine), "card": _seal_card(key, card, b"A")})
        ack = await channel.receive()
        if not _matches(ack.get("ack"), _mac(key, b"ack")):
            raise PairingFailed("the other side's acknowledgement does not match")
        return Paired(contacts.pin(device.store, peer, alias), confirmation(key))
    finally:
        with contextlib.suppress(RelayError):
            await relay.delete(code.mailbox)


async def join(
    device: Device, relay: RelayClient, text: str, alias: str, timeout: float = TTL
) -> Paired:
    """Pair with the side that showed the code `text` (side B)."""
    code = Code.parse(text)
    alias = _check_alias_free(device, alias)
    card = await _prepare(device, relay)
    channel = _Channel(relay, code.mailbox, min(timeout, TTL))
    first = await channel.receive()
    spake = SPAKE2_Symmetric(str(code).encode(), idSymmetric=_SPAKE_ID)
    mine = spake.start()
    theirs, key = _finish(spake, first)
    await channel.send(
        {"pake": mine.hex(), "confirm": _mac(key, mine), "card": _seal_card(key, card, b"B")}
    )
    answer = await channel.receive()
    if not _matches(answer.get("confirm"), _mac(key, theirs)):
        await channel.abort("the codes differ")
        raise PairingFailed("the codes differ (a typo?), or someone interfered")
    peer = _open_card(key, answer, b"A")
    try:
        contact = contacts.pin(device.store, peer, alias)
    except Exception:
        await channel.abort("the other side refused the card")
        raise
    await channel.send({"ack": _mac(key, b"ack")})
    return Paired(contact, confirmation(key))
