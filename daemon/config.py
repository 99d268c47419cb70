"""Device configuration: TOML at ``config.toml``, overridden by ``CARNET_*`` variables.

Flags given on the command line override both (callers pass them in).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from carnet.protocol.errors import InvalidConfig


@dataclass
class Config:
    relay: str = ""
    name: str = ""
    device_name: str = ""
    inbox: str = ""
    reminder_command: str = ""
    reminder_leads: list[str] = field(default_factory=lambda: ["1d", "2h"])
    push_debounce_ms: int = 100

    @classmethod
    def load(cls, path: Path, environ: dict[str, str] | None = None, **overrides: Any) -> Config:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if path.exists():
            try:
                values = tomllib.loads(path.read_text())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
                raise InvalidConfig(f"{path}: {exc}") from None
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise InvalidConfig(f"{path}: unknown setting {sorted(unknown)[0]!r}")
        for name in known:
            raw = env.get(f"CARNET_{name.upper()}")
            if raw is not None:
                values[name] = _from_env(name, raw, known[name].type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)
        config.check(path)
        return config

    def check(self, path: Path) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            expected = {"int": int, "str": str}.get(str(f.type), list)
            if not isinstance(value, expected) or isinstance(value, bool):
                raise InvalidConfig(f"{path}: {f.name} must be of type {f.type}")
        if self.relay and not self.relay.startswith(("http://", "https://")):
            raise InvalidConfig(f"relay {self.relay!r} must start with http:// or https://")

    def save(self, path: Path) -> None:
        """Write the non-default settings as TOML (JSON strings are valid TOML strings)."""
        default = Config()
        lines = [
            f"{f.name} = {json.dumps(getattr(self, f.name))}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        ]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, path)


def _from_env(name: str, raw: str, kind: Any) -> Any:
    if str(kind) == "int":
        try:
            return int(raw)
        except ValueError:
            raise InvalidConfig(f"CARNET_{name.upper()} must be a whole number") from None
    if str(kind).startswith("list"):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw
