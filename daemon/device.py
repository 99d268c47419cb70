"""One device of one identity: its paths, configuration, store and (when unlocked) keys.

This is the library the CLI and the daemon both drive; neither touches files
or keys directly.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from nacl.signing import VerifyKey

from carnet.daemon import keys as keyfile
from carnet.daemon.config import Config
from carnet.daemon.paths import Paths
from carnet.daemon.store import Store
from carnet.protocol.envelope import check_certificate
from carnet.protocol.errors import AlreadyInitialised, NotInitialised


@dataclass
class Device:
    paths: Paths
    config: Config
    store: Store
    _secrets: keyfile.Secrets | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls,
        paths: Paths,
        config: Config,
        passphrase: bytes | None,
        secrets: keyfile.Secrets | None = None,
    ) -> Device:
        """Set up a new device: key file, configuration, store, roster entry."""
        if paths.keys.exists():
            raise AlreadyInitialised(f"({paths.keys})")
        paths.ensure()
        secrets = secrets or keyfile.Secrets.generate()
        config.device_name = config.device_name or socket.gethostname()
        config.save(paths.config_file)
        store = Store.open(paths.store)
        with store.transaction():
            store.set_meta("device_id", secrets.device_id)
        store.register_device(bytes(secrets.device.verify_key).hex(), config.device_name)
        # Written last: its presence is what marks the device as initialised.
        keyfile.write_key_file(paths.keys, secrets, passphrase)
        return cls(paths, config, store, secrets)

    @classmethod
    def open(cls, paths: Paths, **overrides: object) -> Device:
        if not paths.keys.exists():
            raise NotInitialised()
        config = Config.load(paths.config_file, **overrides)  # type: ignore[arg-type]
        return cls(paths, config, Store.open(paths.store))

    def close(self) -> None:
        self.store.close()

    @property
    def sealed(self) -> bool:
        return self._secrets is None and keyfile.is_sealed(self.paths.keys)

    def unlock(self, passphrase: bytes | None = None) -> keyfile.Secrets:
        if self._secrets is None:
            self._secrets = keyfile.read_key_file(self.paths.keys, passphrase)
        return self._secrets


def trust_identity(identity: VerifyKey) -> Callable[[bytes, bytes], bool]:
    """A trust check accepting devices certified by `identity` (memoised per device)."""

    @lru_cache(maxsize=256)
    def trusted(device: bytes, cert: bytes) -> bool:
        return check_certificate(identity, device, cert)

    return trusted
