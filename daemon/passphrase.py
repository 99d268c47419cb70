"""Where the key file's passphrase comes from, in order of precedence:

``--passphrase-file``, ``$CARNET_PASSPHRASE_FILE``, systemd's
``$CREDENTIALS_DIRECTORY/carnet-passphrase``, then an interactive prompt.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from carnet.protocol.errors import KeyFileError, UsageError

CREDENTIAL_NAME = "carnet-passphrase"


def _read(path: Path) -> bytes:
    try:
        secret = path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise UsageError(f"cannot read passphrase file {path}: {exc.strerror}") from None
    if not secret:
        raise UsageError(f"passphrase file {path} is empty")
    return secret


def resolve(explicit: Path | None = None, *, confirm: bool = False) -> bytes | None:
    """The passphrase, or None when no source gives one and no terminal can ask."""
    if explicit is not None:
        return _read(explicit)
    if os.environ.get("CARNET_PASSPHRASE_FILE"):
        return _read(Path(os.environ["CARNET_PASSPHRASE_FILE"]))
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / CREDENTIAL_NAME).exists():
        return _read(Path(credentials) / CREDENTIAL_NAME)
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass("carnet passphrase: ").encode()
    if confirm and getpass.getpass("repeat passphrase: ").encode() != first:
        raise UsageError("the two passphrases differ")
    if not first:
        raise UsageError("empty passphrase; use --no-passphrase to rely on file permissions")
    return first


def required(explicit: Path | None = None) -> bytes:
    secret = resolve(explicit)
    if secret is None:
        raise KeyFileError(
            "the key file is sealed; give its passphrase with --passphrase-file, "
            "CARNET_PASSPHRASE_FILE or a terminal"
        )
    return secret
