"""Device configuration: TOML at ``config.toml``, overridden by ``CARNET_*`` variables.

Flags given on the command line override both (callers pass them in).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from carnet.protocol.errors import InvalidConfig

ROLES = ("patient", "practitioner")


@dataclass
class Config:
    relay: str = ""
    name: str = ""
    # "patient" or "practitioner": a practitioner receives shares (see daemon/sharing).
    role: str = "patient"
    device_name: str = ""
    inbox: str = ""
    reminder_command: str = ""
    reminder_leads: list[str] = field(default_factory=lambda: ["1d", "2h"])
    # Local changes within this long of a sync round are sent together in the next one.
    push_debounce_ms: int = 25
    # How long a file dropped in the inbox must stay unchanged before it is read.
    inbox_settle_ms: int = 1000

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
        if self.role not in ROLES:
            raise InvalidConfig(f"{path}: role must be one of {', '.join(ROLES)}")
        for name in ("push_debounce_ms", "inbox_settle_ms"):
            if getattr(self, name) < 0:
                raise InvalidConfig(f"{path}: {name} must not be negative")
        for lead in self.reminder_leads:
            try:
                parse_duration(lead)
            except InvalidConfig as exc:
                raise InvalidConfig(f"{path}: reminder_leads: {exc.detail}") from None
        self.reminder_argv()

    @property
    def reminder_lead_seconds(self) -> list[int]:
        """The reminder lead times in seconds, without repeats, longest first."""
        return sorted({parse_duration(lead) for lead in self.reminder_leads}, reverse=True)

    def reminder_argv(self) -> list[str]:
        """The reminder command split like a shell would, but never run by one."""
        try:
            return shlex.split(self.reminder_command)
        except ValueError as exc:
            raise InvalidConfig(f"reminder_command: {exc}") from None

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


_DURATION = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``10m``, ``2h``, ``1d`` or ``1h30m``."""
    compact = str(text).replace(" ", "").lower()
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise InvalidConfig(f"duration {text!r} is not like 30m, 2h or 1d")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise InvalidConfig(f"duration {text!r} must be longer than zero")
    return seconds


def _from_env(name: str, raw: str, kind: Any) -> Any:
    if str(kind) == "int":
        try:
            return int(raw)
        except ValueError:
            raise InvalidConfig(f"CARNET_{name.upper()} must be a whole number") from None
    if str(kind).startswith("list"):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw
