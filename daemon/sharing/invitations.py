"""Invitations: how a practitioner learns of a share, sealed to their box key.

The device making a share leaves one ordinary entry (``protocol/envelope.py``)
in the practitioner's introduction mailbox, written with the keys from their
card, signed by the device and carrying its certificate from the patient's
identity. Its body is ``{"inv": base64(SealedBox(practitioner's box key, JSON))}``::

    {"v": 1, "share": id, "identity": patient identity key (hex), "name": patient's name,
     "relay": URL of the share's mailboxes, "expires": Unix time, "scope": description,
     "data": {"id", "entry", "tag", "read"} (hex: the read subset, never the write seed),
     "notes": notes mailbox secret (hex) or null}

The envelope's key is in the card, hence known to every holder of the card;
the sealed box is what keeps the invitation to the practitioner. The
practitioner accepts it only if the writing device is certified by the identity
the invitation names and that identity is a pinned contact (``incoming``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from carnet.daemon.keys import Secrets
from carnet.daemon.sharing import contacts
from carnet.daemon.sharing.cards import Card
from carnet.daemon.sharing.relays import Relays
from carnet.daemon.sharing.shares import INVITE_TO_PUSH, INVITE_TO_SEAL, Share, set_progress
from carnet.daemon.store import Store
from carnet.daemon.sync import outbox
from carnet.daemon.sync.transfer import push
from carnet.protocol.mailbox import MailboxKeys

VERSION = 1
_LAST_TIME = 253402300800.0  # 10000-01-01: beyond, datetime cannot show an expiry


@dataclass(frozen=True)
class Invitation:
    share_id: str
    identity: bytes
    name: str
    relay: str
    expires: float
    scope: str
    data: MailboxKeys  # the read subset
    notes_secret: bytes | None

    @property
    def notes(self) -> MailboxKeys | None:
        return MailboxKeys.from_secret(self.notes_secret) if self.notes_secret else None

    def to_json(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "share": self.share_id,
            "identity": self.identity.hex(),
            "name": self.name,
            "relay": self.relay,
            "expires": self.expires,
            "scope": self.scope,
            "data": {
                "id": self.data.mailbox_id.hex(),
                "entry": self.data.entry_key.hex(),
                "tag": self.data.tag_key.hex(),
                "read": (self.data.read_seed or b"").hex(),
            },
            "notes": self.notes_secret.hex() if self.notes_secret else None,
        }

    @classmethod
    def from_json(cls, raw: Any) -> Invitation:
        """Parse; raises ValueError (or KeyError/TypeError) when anything is off."""
        if not isinstance(raw, dict) or raw.get("v") != VERSION:
            raise ValueError("not a version 1 invitation")
        data = raw["data"]
        keys = [bytes.fromhex(str(data[k])) for k in ("id", "entry", "tag", "read")]
        identity = bytes.fromhex(str(raw["identity"]))
        notes = raw.get("notes")
        notes_secret = bytes.fromhex(str(notes)) if notes else None
        if any(len(k) != 32 for k in (*keys, identity, notes_secret or bytes(32))):
            raise ValueError("a key has the wrong length")
        share_id = str(raw["share"])
        if len(share_id) != 32 or any(c not in "0123456789abcdef" for c in share_id):
            raise ValueError("the share id is not 32 hex digits")  # as shares.create makes
        expires = float(raw["expires"])
        if not 0 < expires < _LAST_TIME:  # also NaN; JSON allows NaN and Infinity
            raise ValueError("the expiry is out of range")
        return cls(
            share_id=share_id,
            identity=identity,
            name=str(raw["name"]),
            relay=str(raw["relay"]),
            expires=expires,
            scope=str(raw["scope"]),
            data=MailboxKeys(keys[0], keys[1], keys[2], keys[3], write_seed=None),
            notes_secret=notes_secret,
        )


def read_subset(keys: MailboxKeys) -> MailboxKeys:
    """What a reader is given of a mailbox: everything but the write capability."""
    return MailboxKeys(keys.mailbox_id, keys.entry_key, keys.tag_key, keys.read_seed, None)


def seal(card: Card, invitation: Invitation) -> dict[str, str]:
    """The intro entry body carrying `invitation`, readable by `card`'s owner only."""
    plain = json.dumps(invitation.to_json(), separators=(",", ":"), ensure_ascii=False).encode()
    sealed = SealedBox(PublicKey(card.box)).encrypt(plain)
    return {"inv": base64.b64encode(sealed).decode()}


def unseal(box: PrivateKey, body: dict[str, Any]) -> Invitation:
    """Open an intro entry body; raises ValueError if it is not an invitation to us."""
    try:
        plain = SealedBox(box).decrypt(base64.b64decode(str(body["inv"])))
        return Invitation.from_json(json.loads(plain))
    except (CryptoError, KeyError, TypeError, ValueError) as exc:
        raise ValueError("not an invitation sealed to this identity") from exc


async def deliver(store: Store, relays: Relays, secrets: Secrets, name: str, share: Share) -> None:
    """Seal (once) and push the invitation of a share this device made."""
    contact = contacts.by_identity(store, share.identity)
    if contact is None:  # the contact's keys were replaced since: never send to others
        store.add_alert(f"share {share.id[:8]}: {share.alias} changed keys; invitation not sent")
        set_progress(store, share, invite=0)
        return
    intro = contact.card.intro
    if share.progress.invite == INVITE_TO_SEAL:
        drawn = share.secrets(secrets)
        invitation = Invitation(
            share_id=share.id,
            identity=bytes(secrets.identity.verify_key),
            name=name,
            relay=share.relay,
            expires=share.expires,
            scope=share.scope.describe(),
            data=read_subset(drawn.data_keys),
            notes_secret=drawn.notes,
        )
        with store.transaction():
            outbox.append_own(store, intro, secrets.writer, seal(contact.card, invitation))
            set_progress(store, share, invite=INVITE_TO_PUSH)
    relay = relays.get(contact.card.relay)
    read_key = contact.card.intro_read_key
    await push(store, relay, intro, create=lambda: relay.create(intro, read_key=read_key))
    set_progress(store, share, invite=0)
