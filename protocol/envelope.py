"""Entry envelope: pad, sign, encrypt; and the reverse, refusing anything forged.

Relay-visible bytes of one entry (``data``)::

    version (1 byte, = 1) || nonce (24) || XChaCha20-Poly1305(padded, ad)

    ad     = "carnet/entry/v1" || mailbox_id (32) || writer_tag (16) || seq (8, BE)
    padded = Padmé-with-floor( signature (64) || inner )
    inner  = JSON {"dev": hex device key, "cert": hex, "seq": n, "prev": hex, "body": {...}}

The signature is the writing device's Ed25519 signature over
``"carnet/entry-sig/v1" || mailbox_id || writer_tag || inner``; ``cert`` is the
owner identity's signature over the device key. Device key, certificate and
signature are inside the ciphertext, so the relay never sees a long-lived key.
The entry hash, chained through ``prev``, is BLAKE2b-256 of ``data``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey, VerifyKey
from nacl.utils import random

from carnet.protocol.errors import TamperedEntry, UnsupportedVersion
from carnet.protocol.kdf import digest
from carnet.protocol.mailbox import MailboxKeys
from carnet.protocol.padding import CEILING, pad, padded_length, unpad

VERSION = 1
NONCE_BYTES = 24
SIGNATURE_BYTES = 64
GENESIS = bytes(32)
_AD_LABEL = b"carnet/entry/v1"
_SIG_LABEL = b"carnet/entry-sig/v1"
_CERT_LABEL = b"carnet/device-cert/v1"


def certify_device(identity: SigningKey, device_public_key: bytes) -> bytes:
    """The identity's signature making a device key one of its writers."""
    return identity.sign(_CERT_LABEL + device_public_key).signature


def check_certificate(identity: VerifyKey, device_public_key: bytes, cert: bytes) -> bool:
    """False for anything but the identity's valid certificate of this key.

    ``cert`` comes from inside an entry whoever holds a card can write: one of the
    wrong length (PyNaCl raises ValueError) is refused like a forged one.
    """
    try:
        identity.verify(_CERT_LABEL + device_public_key, cert)
    except (BadSignatureError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Writer:
    """A device able to write entries: its signing key and identity certificate."""

    signing_key: SigningKey
    cert: bytes

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)


@dataclass(frozen=True)
class Entry:
    """One entry as the relay stores it."""

    writer: bytes
    seq: int
    data: bytes

    @property
    def hash(self) -> bytes:
        return digest(self.data)


@dataclass(frozen=True)
class OpenedEntry:
    writer: bytes
    seq: int
    device: bytes
    prev: bytes
    body: dict[str, Any]
    hash: bytes


def _ad(keys: MailboxKeys, writer_tag: bytes, seq: int) -> bytes:
    return _AD_LABEL + keys.mailbox_id + writer_tag + seq.to_bytes(8, "big")


def seal(keys: MailboxKeys, writer: Writer, seq: int, prev: bytes, body: dict[str, Any]) -> Entry:
    tag = keys.writer_tag(writer.public_key)
    inner = json.dumps(
        {
            "dev": writer.public_key.hex(),
            "cert": writer.cert.hex(),
            "seq": seq,
            "prev": prev.hex(),
            "body": body,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    if padded_length(SIGNATURE_BYTES + len(inner)) > CEILING:
        # Callers bound what they seal; an entry no relay would take is a bug.
        raise ValueError(f"an entry body of {len(inner)} bytes exceeds the padded maximum")
    signature = writer.signing_key.sign(_SIG_LABEL + keys.mailbox_id + tag + inner).signature
    nonce = random(NONCE_BYTES)
    ciphertext = crypto_aead_xchacha20poly1305_ietf_encrypt(
        pad(signature + inner), _ad(keys, tag, seq), nonce, keys.entry_key
    )
    return Entry(writer=tag, seq=seq, data=bytes([VERSION]) + nonce + ciphertext)


def open_entry(
    keys: MailboxKeys,
    entry: Entry,
    is_trusted_device: Any,
) -> OpenedEntry:
    """Decrypt and verify one entry; `is_trusted_device(pub, cert) -> bool` decides authorship.

    Chain position (seq/prev) is checked by the caller against its feed heads.
    """
    where = f"(writer {entry.writer.hex()[:8]}, entry {entry.seq})"
    if not entry.data or entry.data[0] != VERSION:
        raise UnsupportedVersion(where)
    nonce = entry.data[1 : 1 + NONCE_BYTES]
    try:
        padded = crypto_aead_xchacha20poly1305_ietf_decrypt(
            entry.data[1 + NONCE_BYTES :],
            _ad(keys, entry.writer, entry.seq),
            nonce,
            keys.entry_key,
        )
        plain = unpad(padded)
        signature, inner = plain[:SIGNATURE_BYTES], plain[SIGNATURE_BYTES:]
        fields = json.loads(inner)
        device = bytes.fromhex(fields["dev"])
        cert = bytes.fromhex(fields["cert"])
        prev = bytes.fromhex(fields["prev"])
        seq = fields["seq"]
        body = fields["body"]
    except (CryptoError, ValueError, KeyError, TypeError) as exc:
        raise TamperedEntry(where) from exc
    if seq != entry.seq or keys.writer_tag(device) != entry.writer or len(prev) != 32:
        raise TamperedEntry(where)
    if not isinstance(body, dict) or not is_trusted_device(device, cert):
        raise TamperedEntry(f"{where}: not written by a trusted device")
    try:
        VerifyKey(device).verify(_SIG_LABEL + keys.mailbox_id + entry.writer + inner, signature)
    except (BadSignatureError, ValueError) as exc:
        raise TamperedEntry(f"{where}: bad signature") from exc
    return OpenedEntry(entry.writer, entry.seq, device, prev, body, entry.hash)
