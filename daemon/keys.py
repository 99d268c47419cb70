"""This device's secrets on disk: the device signing key and the vault key.

One JSON file, mode 0600, written atomically. Optionally sealed with a
passphrase: argon2id (``nacl.pwhash``) stretches it into a SecretBox key.
Everything else (identity key, mailbox secrets) is derived from these two.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.pwhash import argon2id
from nacl.secret import SecretBox
from nacl.signing import SigningKey
from nacl.utils import random

from carnet.protocol.envelope import Writer, certify_device
from carnet.protocol.errors import KeyFileError, WrongPassphrase
from carnet.protocol.kdf import derive
from carnet.protocol.mailbox import MailboxKeys

FORMAT = 1


@dataclass(frozen=True)
class Secrets:
    device_seed: bytes
    vault_key: bytes

    @classmethod
    def generate(cls) -> Secrets:
        return cls(device_seed=random(32), vault_key=random(32))

    @property
    def device(self) -> SigningKey:
        return SigningKey(self.device_seed)

    @property
    def device_id(self) -> str:
        """Short public name of this device, used in clock stamps and listings."""
        return bytes(self.device.verify_key).hex()[:16]

    @property
    def identity(self) -> SigningKey:
        """The owner's identity key: shared by all their devices, certifies each."""
        return SigningKey(derive(self.vault_key, "identity-sign"))

    @property
    def writer(self) -> Writer:
        device = self.device
        return Writer(device, certify_device(self.identity, bytes(device.verify_key)))

    @property
    def vault_mailbox(self) -> MailboxKeys:
        return MailboxKeys.from_secret(derive(self.vault_key, "vault-mailbox"))


def _encode(secrets: Secrets) -> bytes:
    return json.dumps(
        {"device": secrets.device_seed.hex(), "vault": secrets.vault_key.hex()}
    ).encode()


def _decode(raw: bytes) -> Secrets:
    obj = json.loads(raw)
    return Secrets(bytes.fromhex(obj["device"]), bytes.fromhex(obj["vault"]))


def _box(passphrase: bytes, salt: bytes, ops: int, mem: int) -> SecretBox:
    return SecretBox(argon2id.kdf(SecretBox.KEY_SIZE, passphrase, salt, opslimit=ops, memlimit=mem))


def write_key_file(path: Path, secrets: Secrets, passphrase: bytes | None) -> None:
    """Write the key file atomically with mode 0600 (never readable by others, even briefly)."""
    doc: dict[str, object] = {"format": FORMAT, "sealed": passphrase is not None}
    if passphrase is None:
        doc["secrets"] = json.loads(_encode(secrets))
    else:
        salt = random(argon2id.SALTBYTES)
        ops, mem = argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE
        sealed = _box(passphrase, salt, ops, mem).encrypt(_encode(secrets))
        doc.update(
            kdf="argon2id",
            salt=salt.hex(),
            opslimit=ops,
            memlimit=mem,
            box=base64.b64encode(sealed).decode(),
        )
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        json.dump(doc, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def is_sealed(path: Path) -> bool:
    return bool(_read_doc(path).get("sealed"))


def _read_doc(path: Path) -> dict[str, object]:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"{path} does not exist") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path} is readable by others; run `chmod 600 {path}`")
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"{path} is unreadable ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeyFileError(f"{path} is not a carnet key file of format {FORMAT}")
    return doc


def read_key_file(path: Path, passphrase: bytes | None) -> Secrets:
    doc = _read_doc(path)
    try:
        if not doc.get("sealed"):
            return _decode(json.dumps(doc["secrets"]).encode())
        if passphrase is None:
            raise KeyFileError(f"{path} is sealed; give its passphrase")
        box = _box(
            passphrase,
            bytes.fromhex(str(doc["salt"])),
            int(doc["opslimit"]),
            int(doc["memlimit"]),  # type: ignore[call-overload]
        )
        raw = box.decrypt(base64.b64decode(str(doc["box"])))
    except CryptoError:
        raise WrongPassphrase() from None
    except (KeyError, ValueError, TypeError):
        raise KeyFileError(f"{path} is damaged") from None
    return _decode(raw)
