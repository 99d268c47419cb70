"""Where one device keeps its state: CARNET_HOME, or the XDG directories."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    data: Path
    config: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> Paths:
        """`home` (or $CARNET_HOME) holds everything; otherwise follow XDG."""
        chosen = home or os.environ.get("CARNET_HOME")
        if chosen:
            root = Path(chosen).expanduser().absolute()
            return cls(data=root, config=root)
        user = Path.home()
        data = Path(os.environ.get("XDG_DATA_HOME") or user / ".local" / "share") / "carnet"
        config = Path(os.environ.get("XDG_CONFIG_HOME") or user / ".config") / "carnet"
        return cls(data=data, config=config)

    @property
    def store(self) -> Path:
        return self.data / "carnet.sqlite3"

    @property
    def keys(self) -> Path:
        return self.data / "keys.json"

    @property
    def config_file(self) -> Path:
        return self.config / "config.toml"

    @property
    def sync_lock(self) -> Path:
        return self.data / "sync.lock"

    @property
    def inbox(self) -> Path:
        """Where files to import are dropped, unless the configuration names another folder."""
        return self.data / "inbox"

    # carnetd's own files: its single-instance lock (holding its pid), the datagram
    # socket the CLI pokes after a change, and its live status for `carnet status`.
    @property
    def daemon_pid(self) -> Path:
        return self.data / "carnetd.pid"

    @property
    def daemon_socket(self) -> Path:
        return self.data / "carnetd.sock"

    @property
    def daemon_status(self) -> Path:
        return self.data / "carnetd.status.json"

    def ensure(self) -> None:
        for folder in {self.data, self.config}:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
