"""Contact cards: an identity's public keys and introduction mailbox, in one line.

A card is ``carnet1:`` followed by base64url (unpadded) of::

    version (1) | role (1) | identity key (32) | box key (32)
    | intro id (32) | intro write seed (32) | intro writer-tag key (32)
    | intro entry key (32) | intro read key, public half (32)
    | name length (1) | name (UTF-8) | relay length (2, BE) | relay URL (UTF-8)
    | signature (64)

The signature is the identity key's, over ``"carnet/card/v1"`` and everything
before it: name, relay and introduction mailbox are bound to the identity, so a
card altered in transit fails to decode. The *fingerprint* (safety number)
covers the two keys people must check out of band: the identity key (signs
certificates of the identity's devices) and the box key (opens invitations).

Whoever holds a card can *write* to the identity's introduction mailbox (and
create it, hence its read key's public half); only the identity can read it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace

from nacl.encoding import RawEncoder
from nacl.exceptions import BadSignatureError
from nacl.hash import blake2b
from nacl.public import PrivateKey
from nacl.signing import SigningKey, VerifyKey

from carnet.daemon.config import ROLES, Config
from carnet.daemon.keys import Secrets
from carnet.protocol.errors import InvalidCard
from carnet.protocol.kdf import derive
from carnet.protocol.mailbox import MailboxKeys

PREFIX = "carnet1:"
VERSION = 1
MAX_NAME_BYTES = 255
MAX_RELAY_BYTES = 2048
_SIG_LABEL = b"carnet/card/v1"
_KEYS = 7 * 32
_SIGNATURE = 64


def intro_mailbox(secrets: Secrets) -> MailboxKeys:
    """This identity's introduction mailbox, where contacts leave sealed invitations."""
    return MailboxKeys.from_secret(derive(secrets.vault_key, "intro-mailbox"))


def box_key(secrets: Secrets) -> PrivateKey:
    """The X25519 key invitations to this identity are sealed to."""
    return PrivateKey(derive(secrets.vault_key, "intro-box"))


def fingerprint(identity: bytes, box: bytes) -> str:
    """The safety number of a pair of keys: 6 groups of 5 digits (about 100 bits)."""
    raw = blake2b(identity + box, digest_size=30, person=b"carnet/fpr/v1", encoder=RawEncoder)
    groups = (int.from_bytes(raw[i : i + 5], "big") % 100000 for i in range(0, 30, 5))
    return " ".join(f"{group:05d}" for group in groups)


@dataclass(frozen=True)
class Card:
    name: str
    role: str
    identity: bytes
    box: bytes
    relay: str
    intro: MailboxKeys  # the write subset: id, entry and tag keys, write seed
    intro_read_key: bytes
    signature: bytes = b""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.identity, self.box)

    @property
    def identity_key(self) -> VerifyKey:
        return VerifyKey(self.identity)

    def same_keys(self, other: Card) -> bool:
        return self.identity == other.identity and self.box == other.box

    def signed_bytes(self) -> bytes:
        """Everything the signature covers, before its label."""
        name, relay = self.name.encode(), self.relay.encode()
        assert self.intro.write_seed is not None
        return b"".join(
            [
                bytes([VERSION, ROLES.index(self.role)]),
                self.identity,
                self.box,
                self.intro.mailbox_id,
                self.intro.write_seed,
                self.intro.tag_key,
                self.intro.entry_key,
                self.intro_read_key,
                bytes([len(name)]),
                name,
                len(relay).to_bytes(2, "big"),
                relay,
            ]
        )

    def encode(self) -> str:
        raw = self.signed_bytes() + self.signature
        return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Card:
        """Parse and verify a card; raises InvalidCard with the reason."""
        compact = "".join(text.split())
        if not compact.startswith(PREFIX):
            raise InvalidCard(f"it does not start with {PREFIX}")
        payload = compact[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        except (binascii.Error, ValueError):
            raise InvalidCard("it is not base64url") from None
        card = cls._parse(raw)
        try:
            card.identity_key.verify(_SIG_LABEL + card.signed_bytes(), card.signature)
        except (BadSignatureError, ValueError):
            raise InvalidCard("its signature does not match (altered or cut)") from None
        return card

    @classmethod
    def _parse(cls, raw: bytes) -> Card:
        fixed = 2 + _KEYS
        if len(raw) < fixed + 1 + 2 + _SIGNATURE or raw[0] != VERSION or raw[1] >= len(ROLES):
            raise InvalidCard("unknown version or truncated")
        keys = [raw[2 + 32 * i : 34 + 32 * i] for i in range(7)]
        name_len = raw[fixed]
        relay_at = fixed + 1 + name_len
        relay_len = int.from_bytes(raw[relay_at : relay_at + 2], "big")
        end = relay_at + 2 + relay_len
        if len(raw) != end + _SIGNATURE:
            raise InvalidCard("truncated or too long")
        try:
            name = raw[fixed + 1 : relay_at].decode()
            relay = raw[relay_at + 2 : end].decode()
        except UnicodeDecodeError:
            raise InvalidCard("its name or relay is not UTF-8") from None
        intro = MailboxKeys(
            keys[2], entry_key=keys[5], tag_key=keys[4], read_seed=None, write_seed=keys[3]
        )
        return cls(name, ROLES[raw[1]], keys[0], keys[1], relay, intro, keys[6], raw[end:])


def own_card(secrets: Secrets, config: Config) -> Card:
    """This identity's card, signed by its identity key."""
    if len(config.name.encode()) > MAX_NAME_BYTES or len(config.relay.encode()) > MAX_RELAY_BYTES:
        raise InvalidCard("the name or relay URL in the configuration is too long")
    intro = intro_mailbox(secrets)
    identity = secrets.identity
    unsigned = Card(
        name=config.name,
        role=config.role,
        identity=bytes(identity.verify_key),
        box=bytes(box_key(secrets).public_key),
        relay=config.relay,
        intro=MailboxKeys(intro.mailbox_id, intro.entry_key, intro.tag_key, None, intro.write_seed),
        intro_read_key=bytes(intro.read_signer().verify_key),
    )
    return _sign(unsigned, identity)


def _sign(card: Card, identity: SigningKey) -> Card:
    signature = identity.sign(_SIG_LABEL + card.signed_bytes()).signature
    return replace(card, signature=signature)
