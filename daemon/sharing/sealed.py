"""Share keys at rest: sealed under a key only this identity's devices derive.

Share and mailbox secrets travel between one's own devices inside vault
operations and sit in the store. Both are sealed (XChaCha20-Poly1305) under
``derive(vault_key, "sharing-secrets")``, with the share id as associated data,
so that a copy of the store (which the key file's passphrase does not protect)
does not hand out the capabilities to read notes or erase a share.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from nacl.exceptions import CryptoError
from nacl.secret import Aead

from carnet.daemon.keys import Secrets
from carnet.protocol.errors import TamperedEntry
from carnet.protocol.kdf import derive

_AD = "carnet/sharing-secrets/v1/"


def _aead(secrets: Secrets) -> Aead:
    return Aead(derive(secrets.vault_key, "sharing-secrets"))


def seal(secrets: Secrets, share_id: str, value: dict[str, Any]) -> str:
    plain = json.dumps(value, separators=(",", ":")).encode()
    return base64.b64encode(_aead(secrets).encrypt(plain, (_AD + share_id).encode())).decode()


def unseal(secrets: Secrets, share_id: str, sealed: str) -> dict[str, Any]:
    try:
        plain = _aead(secrets).decrypt(base64.b64decode(sealed), (_AD + share_id).encode())
        value = json.loads(plain)
    except (CryptoError, ValueError) as exc:
        raise TamperedEntry(f"(keys of share {share_id[:8]} do not open)") from exc
    if not isinstance(value, dict):
        raise TamperedEntry(f"(keys of share {share_id[:8]} are malformed)")
    return value
