"""Padmé padding (Nikitin et al., PoPETs 2019) with a 1 KiB floor.

Padmé alone barely pads small inputs (100 -> 104 bytes), and an appointment is
small, so every entry is padded to at least ``FLOOR`` bytes. The encoding is
libsodium's ISO/IEC 7816-4 (``sodium_pad``), so unpadding is unambiguous.
"""

from __future__ import annotations

from nacl.bindings import sodium_pad, sodium_unpad

FLOOR = 1024
CEILING = 64 * 1024  # the largest padded entry the protocol allows


def padme(length: int) -> int:
    """The Padmé length for `length` bytes: leaks O(log log L) bits, <= 12% overhead."""
    if length < 2:
        return length
    e = length.bit_length() - 1
    s = e.bit_length()
    mask = (1 << (e - s)) - 1
    return (length + mask) & ~mask


def padded_length(length: int) -> int:
    """Final size of `length` bytes once padded (one byte more for the 0x80 marker)."""
    return max(FLOOR, padme(length + 1))


def pad(data: bytes) -> bytes:
    # sodium_pad pads to a multiple of the block size; with the block size set to
    # the target length (>= len + 1) that multiple is the target itself.
    return sodium_pad(data, padded_length(len(data)))


def unpad(data: bytes) -> bytes:
    return sodium_unpad(data, len(data))
