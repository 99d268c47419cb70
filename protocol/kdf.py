"""Sub-key derivation: one key per purpose, from keyed BLAKE2b.

PyNaCl has no ``crypto_kdf``; keyed BLAKE2b with a per-purpose personalisation
label is the construction libsodium's own KDF is built on.
"""

from __future__ import annotations

from nacl.encoding import RawEncoder
from nacl.hash import blake2b

KEY_BYTES = 32


def derive(parent: bytes, label: str, context: bytes = b"", size: int = KEY_BYTES) -> bytes:
    """Derive a `size`-byte key for `label` (at most 16 ASCII bytes) from `parent`."""
    person = label.encode("ascii")
    if len(person) > 16:
        raise ValueError(f"KDF label {label!r} is longer than 16 bytes")
    return blake2b(
        context, digest_size=size, key=parent, person=person.ljust(16, b"\0"), encoder=RawEncoder
    )


def digest(data: bytes, size: int = 32) -> bytes:
    """Unkeyed BLAKE2b, used for entry hashes and request-body digests."""
    return blake2b(data, digest_size=size, encoder=RawEncoder)
