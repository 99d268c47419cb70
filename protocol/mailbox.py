"""Mailbox keys: what a holder needs to find, write and read one mailbox.

A mailbox is addressed by an opaque 32-byte id. Every key of a mailbox is
derived from one 32-byte *mailbox secret*, one label per purpose, so that:

- the relay learns the id and the two capability *public* keys, nothing else;
- a holder can be handed a subset (a doctor gets read + entry keys of a share
  mailbox, never its write key; a contact gets write + entry keys of someone's
  introduction mailbox, never its read key);
- ids of different mailboxes of one person are unlinkable without the secret.
"""

from __future__ import annotations

from dataclasses import dataclass

from nacl.signing import SigningKey

from carnet.protocol.kdf import derive

WRITER_TAG_BYTES = 16


@dataclass(frozen=True)
class MailboxKeys:
    mailbox_id: bytes
    entry_key: bytes
    tag_key: bytes
    read_seed: bytes | None
    write_seed: bytes | None = None

    @classmethod
    def from_secret(cls, secret: bytes) -> MailboxKeys:
        return cls(
            mailbox_id=derive(secret, "mbox-id"),
            entry_key=derive(secret, "mbox-entry-key"),
            tag_key=derive(secret, "mbox-writer-tag"),
            read_seed=derive(secret, "mbox-read-cap"),
            write_seed=derive(secret, "mbox-write-cap"),
        )

    @property
    def hex_id(self) -> str:
        return self.mailbox_id.hex()

    def writer_tag(self, device_public_key: bytes) -> bytes:
        """The relay-visible pseudonym of a device in this mailbox only."""
        return derive(self.tag_key, "writer-tag", device_public_key, WRITER_TAG_BYTES)

    def read_signer(self) -> SigningKey:
        if self.read_seed is None:
            raise PermissionError("this holder has no read capability for the mailbox")
        return SigningKey(self.read_seed)

    def write_signer(self) -> SigningKey:
        if self.write_seed is None:
            raise PermissionError("this holder has no write capability for the mailbox")
        return SigningKey(self.write_seed)
