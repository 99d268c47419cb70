"""Capabilities on the wire: requests signed by a mailbox's read or write key.

The relay learns a mailbox's two capability public keys when it is created and
checks each request's signature against one of them. It never learns who holds
the private halves. The signed string binds method, path with query, a
timestamp (accepted within ``MAX_SKEW`` seconds) and the body's digest.
"""

from __future__ import annotations

import base64
import time

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from carnet.protocol.kdf import digest

HEADER = "X-Carnet-Auth"
MAX_SKEW = 300
_LABEL = b"carnet/relay-request/v1\n"


def _message(method: str, path_qs: str, timestamp: int, body: bytes) -> bytes:
    return b"\n".join(
        [_LABEL + method.upper().encode(), path_qs.encode(), str(timestamp).encode(), digest(body)]
    )


def sign_request(
    key: SigningKey, method: str, path_qs: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    timestamp = int(now if now is not None else time.time())
    sig = key.sign(_message(method, path_qs, timestamp, body)).signature
    return {HEADER: f"{timestamp}.{base64.urlsafe_b64encode(sig).decode()}"}


def verify_request(
    public_key: bytes,
    method: str,
    path_qs: str,
    body: bytes,
    header: str | None,
    now: float | None = None,
) -> bool:
    if not header or "." not in header:
        return False
    stamp, _, sig_b64 = header.partition(".")
    try:
        timestamp = int(stamp)
        signature = base64.urlsafe_b64decode(sig_b64.encode())
    except ValueError:
        return False
    try:
        if abs((now if now is not None else time.time()) - timestamp) > MAX_SKEW:
            return False
    except OverflowError:  # a timestamp too large to compare with a float
        return False
    try:
        VerifyKey(public_key).verify(_message(method, path_qs, timestamp, body), signature)
    except (BadSignatureError, ValueError):
        return False
    return True


def sign_creation(write_key: SigningKey, mailbox_id: bytes, read_key: bytes) -> bytes:
    """Proof, at creation, that the creator holds the write key it registers."""
    return write_key.sign(b"carnet/create-mailbox/v1" + mailbox_id + read_key).signature


def check_creation(write_key: bytes, mailbox_id: bytes, read_key: bytes, sig: bytes) -> bool:
    try:
        VerifyKey(write_key).verify(b"carnet/create-mailbox/v1" + mailbox_id + read_key, sig)
    except (BadSignatureError, ValueError):
        return False
    return True
